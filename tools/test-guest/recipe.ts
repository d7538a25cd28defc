/**
 * The recipes of the test guests: minimal Debian 12 systems that look installed on VMware, in the layouts real
 * vSphere estates have (BIOS and MBR; UEFI and GPT with a data disk; Secure Boot with shim and an XFS root on LVM).
 * Everything that decides an image's content is here (or in the builders' source); the cache key is a hash of both,
 * so an image is rebuilt exactly when its recipe changes.
 */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** What every variant starts from: one debootstrap (base-tree.ts). */
export const TEST_GUEST_BASE = {
  /** Bump to force a rebuild without other changes. */
  revision: 2,
  suite: 'bookworm',
  /**
   * debootstrap --variant=minbase plus these: a kernel, systemd as init, VMware's guest tools, and what any variant
   * boots or mounts with — GRUB for BIOS and for UEFI, shim and the signed GRUB (Debian's Secure Boot chain), LVM and
   * the XFS tools. A variant that does not use one of them still has it installed, as many real guests do.
   */
  packages: [
    'linux-image-amd64',
    'systemd-sysv',
    'udev',
    'kmod',
    'initramfs-tools',
    'e2fsprogs',
    'open-vm-tools',
    'grub-pc',
    'grub-efi-amd64-bin',
    'grub-efi-amd64-signed',
    'shim-signed',
    'lvm2',
    'xfsprogs',
  ],
  /**
   * Kernel module trees no migrated server needs (graphics, sound, wireless, media, ...), removed to keep the image
   * small; `depmod` runs afterwards. The block, SCSI, VirtIO, network, file system and device-mapper drivers stay.
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

export type GuestVariantName = 'bios' | 'uefi' | 'secureboot-lvm-xfs';

export interface TestGuestVariant {
  name: GuestVariantName;
  /** One line for the README's table and the logs. */
  summary: string;
  firmware: 'bios' | 'efi';
  /** The VM has Secure Boot on: shim and the signed GRUB boot the signed kernel. */
  secureBoot: boolean;
  partitionTable: 'mbr' | 'gpt';
  root: { fs: 'ext4' | 'xfs'; /** On a logical volume of a volume group on the root partition. */ lvm?: { vg: string; lv: string } };
  /**
   * UEFI: whether the boot loader is also on the removable-media path (EFI/BOOT/BOOTX64.EFI). Debian's installer puts
   * it only in EFI/debian and registers a boot entry in the VM's NVRAM, which does not travel with the disks: without
   * the fallback path such a guest finds nothing to boot on a new machine until a converter adds it.
   */
  efiFallbackPath?: boolean;
  diskSizeBytes: number;
  /**
   * A second disk: a partition of `fsBytes` mounted at `mountpoint` by UUID (it holds a marker file), and a scratch
   * partition without a file system over the rest — where tests of warm migration let the "guest" write between
   * syncs without damaging a file system the guest must boot with.
   */
  dataDisk?: { sizeBytes: number; fsBytes: number; mountpoint: '/srv' };
  /**
   * What an installer puts in the initramfs of a guest on VMware with MODULES=list: the paravirtual and LSI SCSI
   * controllers, SATA/IDE, the disk driver and the root file system (and device-mapper under LVM). No VirtIO: a
   * converter has to add it.
   */
  initramfsModules: string[];
}

const VMWARE_STORAGE = ['vmw_pvscsi', 'mptspi', 'mptsas', 'ahci', 'ata_piix', 'sd_mod'];

export const TEST_GUEST_VARIANTS: Record<GuestVariantName, TestGuestVariant> = {
  bios: {
    name: 'bios',
    summary: 'BIOS, MBR, ext4 root, one disk',
    firmware: 'bios',
    secureBoot: false,
    partitionTable: 'mbr',
    root: { fs: 'ext4' },
    diskSizeBytes: 2 * GiB,
    initramfsModules: [...VMWARE_STORAGE, 'ext4'],
  },
  uefi: {
    name: 'uefi',
    summary: 'UEFI, GPT (EFI system partition; shim and GRUB in EFI/debian and on the removable-media path), ext4 root, /srv on a second disk',
    firmware: 'efi',
    secureBoot: false,
    partitionTable: 'gpt',
    root: { fs: 'ext4' },
    efiFallbackPath: true,
    diskSizeBytes: 2 * GiB,
    dataDisk: { sizeBytes: 256 * MiB, fsBytes: 128 * MiB, mountpoint: '/srv' },
    initramfsModules: [...VMWARE_STORAGE, 'ext4'],
  },
  'secureboot-lvm-xfs': {
    name: 'secureboot-lvm-xfs',
    summary: 'UEFI with Secure Boot (shim, signed GRUB and kernel; boot entry only, no fallback path), GPT, XFS root on LVM',
    firmware: 'efi',
    secureBoot: true,
    partitionTable: 'gpt',
    // XFS on a logical volume: the layout RHEL and its relatives install by default.
    root: { fs: 'xfs', lvm: { vg: 'vmguest-vg', lv: 'root' } },
    efiFallbackPath: false,
    diskSizeBytes: 2 * GiB,
    initramfsModules: [...VMWARE_STORAGE, 'dm_mod', 'xfs'],
  },
};

export const GUEST_HOSTNAME = 'vmguest';
/** Serial console, so a boot check can watch the guest reach its login prompt on ttyS0. */
export const GUEST_KERNEL_CMDLINE = 'console=tty0 console=ttyS0,115200n8';
/** The root file system's (or physical volume's) first sector: the usual 1 MiB alignment. */
export const FIRST_PARTITION_SECTOR = 2048;
/** Size of the EFI system partition. */
export const ESP_BYTES = 128 * MiB;
/**
 * The line the guest prints on its serial console before the login prompt (vmigrate-guest-report.service): how it
 * booted and what it mounted, so a boot check's console tail proves the firmware, Secure Boot state, root device and
 * the data disk's mount.
 */
export const GUEST_REPORT_PREFIX = 'vmigrate-guest-report:';
