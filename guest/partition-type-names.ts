/** Human names for the partition types the Guest Fixes stage cares about (the rest keep just their code). */
export const GPT_TYPE_NAMES: Readonly<Record<string, string>> = {
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'EFI System',
  '21686148-6449-6E6F-744E-656564454649': 'BIOS boot',
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'Linux filesystem',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'Linux root (x86-64)',
  '933AC7E1-2EB4-4F13-B844-0E14E2AEF915': 'Linux home',
  'BC13C2FF-59E6-4262-A352-B275FD6F7172': 'Linux extended boot',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'Linux swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'Linux LVM',
  'A19D880F-05FC-4D3B-A006-743F0F84911E': 'Linux RAID',
  'CA7D7CCB-63ED-4C53-861C-1742536059CC': 'Linux LUKS',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'Microsoft basic data',
  'E3C9E316-0B5C-4DB8-817D-F92DF00215AE': 'Microsoft reserved',
  'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC': 'Windows recovery environment',
  '5808C8AA-7E8F-42E0-85D2-E1E90434CFB3': 'Microsoft LDM metadata',
  'AF9B60A0-1431-4F62-BC68-3311714A69AD': 'Microsoft LDM data',
};

export const MBR_TYPE_NAMES: Readonly<Record<number, string>> = {
  0x01: 'FAT12',
  0x04: 'FAT16 <32M',
  0x05: 'Extended',
  0x06: 'FAT16',
  0x07: 'HPFS/NTFS/exFAT',
  0x0b: 'W95 FAT32',
  0x0c: 'W95 FAT32 (LBA)',
  0x0e: 'W95 FAT16 (LBA)',
  0x0f: "W95 Ext'd (LBA)",
  0x27: 'Hidden NTFS WinRE',
  0x82: 'Linux swap / Solaris',
  0x83: 'Linux',
  0x85: 'Linux extended',
  0x8e: 'Linux LVM',
  0xee: 'GPT',
  0xef: 'EFI (FAT-12/16/32)',
  0xfd: 'Linux raid autodetect',
};

export const MBR_EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);

/** An EFI system partition: GPT's ESP type, or MBR type 0xef. */
export function isEfiSystemPartition(p: { type: string }): boolean {
  return p.type.toUpperCase() === 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B' || p.type.toLowerCase() === 'ef';
}

/** GPT's BIOS boot partition, where GRUB embeds its core image on a GPT disk booted by BIOS. */
export function isBiosBootPartition(p: { type: string }): boolean {
  return p.type.toUpperCase() === '21686148-6449-6E6F-744E-656564454649';
}
