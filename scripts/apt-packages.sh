# Sourced by the setup scripts: install the Debian packages of a list that are not installed yet (apt-get update
# only then), so a run with everything present costs a dpkg-query per package.
# Usage: install_missing_apt_packages TAG PACKAGE...
install_missing_apt_packages() {
  local tag=$1; shift
  local missing=() p sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  printf '[%s] installing Debian packages: %s\n' "$tag" "${missing[*]}"
  $sudo apt-get update -qq
  # No service is started system-wide: policy-rc.d or not, vmigrate starts what it needs with private configs.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
