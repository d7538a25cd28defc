/**
 * The files a test guest variant gets after debootstrap: host name, fstab, initramfs settings, GRUB's defaults and
 * boot menu, and the boot report that proves on the serial console how the guest booted.
 */
import { fatVolumeIdText, type GuestIdentity } from './guest-identity';
import { GUEST_HOSTNAME, GUEST_KERNEL_CMDLINE, GUEST_REPORT_PREFIX, type TestGuestVariant } from './recipe';

/** How the guest names its root file system: by UUID, as the Debian installer writes it, or its LVM mapper path. */
export function rootDeviceSpec(v: TestGuestVariant, id: GuestIdentity, lvmMapperPath?: string): string {
  return v.root.lvm ? lvmMapperPath! : `UUID=${id.rootUuid}`;
}

export function guestFiles(v: TestGuestVariant, id: GuestIdentity, kernel: string, lvmMapperPath?: string): Record<string, string> {
  const root = rootDeviceSpec(v, id, lvmMapperPath);
  // By UUID or mapper path: the disk's name changes from sda (VMware SCSI) to vda (VirtIO).
  const fstab = [`${root}\t/\t${v.root.fs}\t${v.root.fs === 'ext4' ? 'errors=remount-ro\t0\t1' : 'defaults\t0\t0'}`];
  if (v.firmware === 'efi') fstab.push(`UUID=${fatVolumeIdText(id.espVolumeId)}\t/boot/efi\tvfat\tumask=0077\t0\t1`);
  if (v.dataDisk) fstab.push(`UUID=${id.dataUuid}\t${v.dataDisk.mountpoint}\text4\tdefaults\t0\t2`);
  const grubModules = [v.partitionTable === 'gpt' ? 'part_gpt' : 'part_msdos', ...(v.root.lvm ? ['lvm'] : []), v.root.fs === 'xfs' ? 'xfs' : 'ext2'];
  return {
    'etc/hostname': `${GUEST_HOSTNAME}\n`,
    'etc/hosts': `127.0.0.1\tlocalhost\n127.0.1.1\t${GUEST_HOSTNAME}\n`,
    'etc/fstab': `${fstab.join('\n')}\n`,
    'etc/initramfs-tools/modules': `# VMware virtual hardware: PVSCSI, LSI Logic SCSI/SAS, SATA/IDE, disks, root file system\n${v.initramfsModules.join('\n')}\n`,
    // What grub-mkconfig reads when a converter regenerates the boot menu: the serial console must survive that.
    'etc/default/grub': [
      'GRUB_DEFAULT=0',
      'GRUB_TIMEOUT=1',
      'GRUB_DISTRIBUTOR=Debian',
      'GRUB_CMDLINE_LINUX_DEFAULT=""',
      `GRUB_CMDLINE_LINUX="${GUEST_KERNEL_CMDLINE}"`,
      'GRUB_TERMINAL="serial console"',
      'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"',
      '',
    ].join('\n'),
    // The menu an installer's update-grub would have produced (grub-mkconfig cannot probe an image from a chroot).
    'boot/grub/grub.cfg': [
      'serial --unit=0 --speed=115200',
      'terminal_input serial console',
      'terminal_output serial console',
      'set default=0',
      'set timeout=1',
      "menuentry 'Debian GNU/Linux' {",
      ...grubModules.map((m) => `  insmod ${m}`),
      `  search --no-floppy --fs-uuid --set=root ${id.rootUuid}`,
      `  linux /boot/vmlinuz-${kernel} root=${root} ro ${GUEST_KERNEL_CMDLINE}`,
      `  initrd /boot/initrd.img-${kernel}`,
      '}',
      '',
    ].join('\n'),
    'usr/local/sbin/vmigrate-guest-report': GUEST_REPORT_SCRIPT,
    'etc/systemd/system/vmigrate-guest-report.service': GUEST_REPORT_UNIT,
  };
}

/**
 * One line on the console before the login prompt: firmware, Secure Boot state (the SecureBoot EFI variable's data
 * byte), and the root, EFI and data mounts with their file systems, and the data disk's marker.
 */
const GUEST_REPORT_SCRIPT = `#!/bin/sh
fw=bios; [ -d /sys/firmware/efi ] && fw=efi
sb=off
for f in /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c; do
  [ -e "$f" ] && [ "$(od -An -tu1 -j4 -N1 "$f" | tr -d ' ')" = 1 ] && sb=on
done
mnt() { findmnt -n -o SOURCE,FSTYPE "$1" 2>/dev/null | tr -s ' ' ',' || true; }
marker=$(cat /srv/vmigrate-marker 2>/dev/null || echo none)
echo "${GUEST_REPORT_PREFIX} firmware=$fw secureboot=$sb root=$(mnt /) efi=$(mnt /boot/efi) srv=$(mnt /srv) marker=$marker"
`;

const GUEST_REPORT_UNIT = `[Unit]
Description=Report how this test guest booted on the console
After=local-fs.target
Before=getty.target serial-getty@ttyS0.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vmigrate-guest-report
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`;

/** The data disk's marker: tests compare it with what the booted guest printed. */
export function dataDiskMarker(id: GuestIdentity): string {
  return `data-disk-${id.dataUuid}`;
}

/** The fields of the guest's report line (`key=value`; an absent mount is an empty value), or undefined without one. */
export function parseGuestReport(consoleText: string): Record<string, string> | undefined {
  const line = consoleText.split('\n').find((l) => l.includes(GUEST_REPORT_PREFIX));
  if (!line) return undefined;
  const fields: Record<string, string> = {};
  for (const m of line.slice(line.indexOf(GUEST_REPORT_PREFIX) + GUEST_REPORT_PREFIX.length).matchAll(/(\w+)=(\S*)/g)) fields[m[1]] = m[2];
  return fields;
}
