/** What inspectDiskLayout reports. Offsets and sizes are in bytes; values are deterministic for identical bytes. */

export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export interface FilesystemInfo {
  /** blkid's TYPE names: ext2, ext3, ext4, xfs, btrfs, vfat, ntfs, swap, swsuspend, LVM2_member, crypto_LUKS, BitLocker. */
  type: string;
  label?: string;
  uuid?: string;
  /** e.g. FAT12/FAT16/FAT32, LUKS "1"/"2". */
  version?: string;
}

export interface PartitionInfo {
  /** 1-4 primary/GPT slot order; 5+ logical partitions inside an MBR extended partition (Linux numbering). */
  number: number;
  start: number;
  size: number;
  /** MBR: type byte in hex as sfdisk prints it ("83", "5", "ef"); GPT: type GUID, upper case. */
  type: string;
  typeName?: string;
  /** GPT partition name. */
  name?: string;
  /** GPT unique partition GUID. */
  uuid?: string;
  /** MBR active flag. */
  bootable?: boolean;
  filesystem?: FilesystemInfo;
  /** LUKS or BitLocker: contents cannot be inspected without a key. */
  encrypted?: boolean;
}

export interface DiskLayout {
  partitionTable: 'gpt' | 'mbr' | 'none';
  /** Logical sector size the table was found with (512 unless a GPT says 4096). */
  sectorSize: number;
  /** MBR disk signature ("0x1234abcd") or GPT disk GUID. */
  diskId?: string;
  partitions: PartitionInfo[];
  /** Whole-disk file system when there is no partition table. */
  filesystem?: FilesystemInfo;
  encrypted?: boolean;
}
