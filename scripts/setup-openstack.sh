#!/usr/bin/env bash
# Installs what the OpenStack lab (tools/openstack-lab, `npm run lab:openstack`) needs on a Debian machine, idempotently:
# Debian's OpenStack (Zed on bookworm) services, MariaDB, RabbitMQ, libvirt + qemu, bindfs; and, when the machine has
# no NFS client, the lab's stand-in /sbin/mount.nfs. A run with everything present takes about a second.
set -euo pipefail

APT_PACKAGES=(keystone glance-api placement-api nova-api nova-conductor nova-scheduler nova-compute nova-compute-qemu
  neutron-server cinder-api cinder-scheduler cinder-volume rabbitmq-server mariadb-server libvirt-daemon-system
  libvirt-clients qemu-block-extra qemu-system-x86 bindfs python3-openstackclient uwsgi-plugin-python3
  python3-pymysql sudo iproute2 e2fsprogs util-linux)

say() { printf '[setup-openstack] %s\n' "$*"; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
. "$(dirname "$0")/apt-packages.sh"
install_missing_apt_packages setup-openstack "${APT_PACKAGES[@]}"

# The lab's Cinder uses the real NFS volume driver, and Nova the real NFS volume connector, over a share that is a
# local file system exported as 127.0.0.1:/path. There is no NFS server or client here, so this mount.nfs stands in
# for the transport only: it bind-mounts the exported directory onto the mount point. It refuses anything but a
# loopback export, and it is installed only where no real mount.nfs (nfs-common) is present.
MARK='# vmigrate-openstack-lab: stand-in mount.nfs (bind-mounts a loopback export), not nfs-common'
TARGET=/sbin/mount.nfs
read -r -d '' STANDIN <<'SH' || true
#!/bin/sh
# vmigrate-openstack-lab: stand-in mount.nfs (bind-mounts a loopback export), not nfs-common
# Usage (as mount(8) calls it): mount.nfs HOST:/EXPORT DIR [-o OPTIONS] ...
# The NFS options are accepted and ignored: the "share" is a directory on this host.
spec=$1; dir=$2
case "$spec" in
  127.*:/*|localhost:/*) path=${spec#*:} ;;
  *) echo "mount.nfs (vmigrate lab stand-in): only loopback exports are served here, not '$spec'" >&2; exit 32 ;;
esac
[ -d "$path" ] || { echo "mount.nfs (vmigrate lab stand-in): export $path does not exist" >&2; exit 32; }
[ -d "$dir" ] || { echo "mount.nfs (vmigrate lab stand-in): mount point $dir does not exist" >&2; exit 32; }
exec mount --bind "$path" "$dir"
SH
if [ -e "$TARGET" ] && ! grep -qF "$MARK" "$TARGET" 2>/dev/null; then
  :   # a real NFS client: the lab mounts through it unchanged
elif [ "$(cat "$TARGET" 2>/dev/null)" != "$STANDIN" ]; then
  say "installing the lab's stand-in $TARGET"
  printf '%s\n' "$STANDIN" | $SUDO tee "$TARGET.vmigrate-new" >/dev/null
  $SUDO chmod 755 "$TARGET.vmigrate-new"
  $SUDO mv -f "$TARGET.vmigrate-new" "$TARGET"
fi
