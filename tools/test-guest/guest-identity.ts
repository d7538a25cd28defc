import { createHash } from 'node:crypto';

/**
 * Every id a test guest's disks carry (file system UUIDs, partition and disk GUIDs, the EFI partition's volume id,
 * LVM ids), derived from the variant's recipe hash so a rebuild is byte-for-byte reproducible and the tests know
 * what to expect.
 */
export interface GuestIdentity {
  rootUuid: string;
  /** MBR disk signature (0x…). */
  diskId: string;
  diskGuid: string;
  espPartitionGuid: string;
  rootPartitionGuid: string;
  /** FAT volume id: 8 hex digits, shown as XXXX-XXXX. */
  espVolumeId: string;
  dataUuid: string;
  dataDiskGuid: string;
  dataPartitionGuid: string;
  scratchPartitionGuid: string;
  pvId: string;
  vgId: string;
  lvId: string;
}

export function guestIdentity(recipeHash: string): GuestIdentity {
  const hex = (label: string) => createHash('sha256').update(`vmigrate-test-guest:${recipeHash}:${label}`).digest('hex');
  const uuid = (label: string) => {
    const h = hex(label);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
  const lvmId = (label: string) => {
    const alphabet = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
    return [...createHash('sha256').update(`vmigrate-test-guest:${recipeHash}:${label}`).digest()].slice(0, 32).map((b) => alphabet[b % alphabet.length]).join('');
  };
  return {
    rootUuid: uuid('root'),
    diskId: `0x${hex('mbr-disk-id').slice(0, 8)}`,
    diskGuid: uuid('disk'),
    espPartitionGuid: uuid('esp-partition'),
    rootPartitionGuid: uuid('root-partition'),
    espVolumeId: hex('esp').slice(0, 8).toUpperCase(),
    dataUuid: uuid('data'),
    dataDiskGuid: uuid('data-disk'),
    dataPartitionGuid: uuid('data-partition'),
    scratchPartitionGuid: uuid('scratch-partition'),
    pvId: lvmId('pv'),
    vgId: lvmId('vg'),
    lvId: lvmId('lv'),
  };
}

/** The FAT volume id as fstab and blkid show it. */
export function fatVolumeIdText(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4)}`;
}
