/**
 * The recipe of the test guest: a minimal Debian that looks like a guest installed on VMware. Everything that
 * decides the image's content is here (or in the builder's source); the cache key is a hash of both, so the image is
 * rebuilt exactly when the recipe changes.
 */

export const TEST_GUEST_RECIPE = {
  /** Bump to force a rebuild without other changes. */
  revision: 1,
  suite: 'bookworm',
  /** debootstrap --variant=minbase plus these: a kernel, a boot loader, systemd as init and VMware's guest tools. */
  packages: ['linux-image-amd64', 'grub-pc', 'open-vm-tools', 'systemd-sysv', 'udev', 'kmod', 'initramfs-tools', 'e2fsprogs'],
  diskSizeBytes: 2 * 1024 * 1024 * 1024,
  /** The root file system's first sector: the usual 1 MiB alignment, which leaves GRUB its embedding gap. */
  partitionStartSector: 2048,
  hostname: 'vmguest',
  /**
   * What an installer puts in the initramfs of a guest on VMware with MODULES=list: the paravirtual and LSI SCSI
   * controllers, SATA/IDE, the disk driver and the root file system. No VirtIO: a converter has to add it.
   */
  initramfsModules: ['vmw_pvscsi', 'mptspi', 'mptsas', 'ahci', 'ata_piix', 'sd_mod', 'ext4'],
  /** Serial console, so a boot check can watch the guest reach its login prompt on ttyS0. */
  kernelCmdline: 'console=tty0 console=ttyS0,115200n8',
  /**
   * Kernel module trees no migrated server needs (graphics, sound, wireless, media, ...), removed to keep the image
   * small; `depmod` runs afterwards. The block, SCSI, VirtIO and network drivers all stay.
   */
  removedModuleDirs: [
    'sound',
    'drivers/gpu',
    'drivers/media',
    'drivers/infiniband',
    'drivers/iio',
    'drivers/staging',
    'drivers/net/wireless',
    'drivers/bluetooth',
    'drivers/hwmon',
    'drivers/usb',
    'drivers/hid',
    'drivers/isdn',
    'drivers/mtd',
    'drivers/nfc',
    'net/wireless',
    'net/mac80211',
    'net/bluetooth',
  ],
  /** Documentation and translations: not needed to boot or to convert. */
  removedPaths: ['usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/info', 'var/cache/apt', 'var/lib/apt/lists'],
} as const;

export type TestGuestRecipe = typeof TEST_GUEST_RECIPE;

/** The files written into the guest after debootstrap. `uuid` is the root file system's UUID, `kernel` the version. */
export function guestFiles(r: TestGuestRecipe, uuid: string, kernel: string): Record<string, string> {
  return {
    'etc/hostname': `${r.hostname}\n`,
    'etc/hosts': `127.0.0.1\tlocalhost\n127.0.1.1\t${r.hostname}\n`,
    // By UUID, as the Debian installer writes it: the disk's name changes from sda (VMware SCSI) to vda (VirtIO).
    'etc/fstab': `UUID=${uuid}\t/\text4\terrors=remount-ro\t0\t1\n`,
    'etc/initramfs-tools/conf.d/vmware-guest.conf': '# Only the drivers listed in ../modules, like a guest installed on VMware\nMODULES=list\nCOMPRESS=gzip\n',
    'etc/initramfs-tools/modules': `# VMware virtual hardware: PVSCSI, LSI Logic SCSI/SAS, SATA/IDE, disks, root file system\n${r.initramfsModules.join('\n')}\n`,
    // What grub-mkconfig reads when a converter regenerates the boot menu: the serial console must survive that.
    'etc/default/grub': [
      'GRUB_DEFAULT=0',
      'GRUB_TIMEOUT=1',
      'GRUB_DISTRIBUTOR=Debian',
      'GRUB_CMDLINE_LINUX_DEFAULT=""',
      `GRUB_CMDLINE_LINUX="${r.kernelCmdline}"`,
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
      '  insmod part_msdos',
      '  insmod ext2',
      `  search --no-floppy --fs-uuid --set=root ${uuid}`,
      `  linux /boot/vmlinuz-${kernel} root=UUID=${uuid} ro ${r.kernelCmdline}`,
      `  initrd /boot/initrd.img-${kernel}`,
      '}',
      '',
    ].join('\n'),
  };
}
