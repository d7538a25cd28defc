/**
 * Writes an LVM2 physical volume holding one volume group with one linear logical volume over all its extents, the
 * way `pvcreate`, `vgcreate` and `lvcreate -l 100%FREE` leave it — into a partition of an image file, without
 * device-mapper, loop devices or an appliance (the build machine may have none of them). The logical volume's bytes
 * start `peStartBytes` into the partition, so its file system is made in place with `mke2fs -E offset=`.
 *
 * On-disk format (LVM2 lib/format_text/layout.h, lib/label/label.h): sector 1 holds the label ("LABELONE", type
 * "LVM2 001") with the PV header (UUID, size, one data area from pe_start, one metadata area at 4 KiB, the v2
 * extension); the metadata area starts with an mda header (magic " LVM2 x[5A%r0N*>", version 1) whose first raw
 * location points at the volume group's text metadata right behind it. Checksums are LVM's CRC-32 (the reflected
 * 0xEDB88320 polynomial, seeded with 0xf597a6cf, no final inversion).
 */
import { open } from 'node:fs/promises';

const SECTOR = 512;
const INITIAL_CRC = 0xf597a6cf;
const MDA_OFFSET = 4096;
const MDA_HEADER_SIZE = 512;
const MDA_MAGIC = Buffer.from(' LVM2 x[5A%r0N*>', 'latin1');
/** The first extent's offset in the partition: LVM's default data alignment, 1 MiB. */
export const PE_START_BYTES = 1024 * 1024;
/** lvcreate's default extent size, 4 MiB. */
export const EXTENT_BYTES = 4 * 1024 * 1024;

export interface PhysicalVolumeSpec {
  vgName: string;
  lvName: string;
  /** 32 characters of [0-9A-Za-z] each (LVM's ids, shown with dashes in 6-4-4-4-4-4-6 groups). */
  pvId: string;
  vgId: string;
  lvId: string;
  /** Where the partition holding the PV starts in the image, and its size. */
  partitionOffsetBytes: number;
  partitionBytes: number;
  /** Seconds since the epoch, recorded as creation time (fixed, so the image is reproducible). */
  creationTime: number;
  creationHost: string;
  /** The device the PV was created on in the guest (LVM's hint only). */
  deviceHint: string;
}

export interface PhysicalVolumeLayout {
  /** Where the logical volume's first byte is in the image, and its size. */
  lvOffsetBytes: number;
  lvBytes: number;
  extents: number;
  /** What the guest's kernel and fstab call the logical volume. */
  mapperPath: string;
}

export function planPhysicalVolume(spec: Pick<PhysicalVolumeSpec, 'partitionOffsetBytes' | 'partitionBytes' | 'vgName' | 'lvName'>): PhysicalVolumeLayout {
  const extents = Math.floor((spec.partitionBytes - PE_START_BYTES) / EXTENT_BYTES);
  if (extents < 1) throw new Error(`a ${spec.partitionBytes}-byte partition is too small for an LVM physical volume`);
  return {
    lvOffsetBytes: spec.partitionOffsetBytes + PE_START_BYTES,
    lvBytes: extents * EXTENT_BYTES,
    extents,
    mapperPath: `/dev/mapper/${spec.vgName.replace(/-/g, '--')}-${spec.lvName.replace(/-/g, '--')}`,
  };
}

export async function writePhysicalVolume(image: string, spec: PhysicalVolumeSpec): Promise<PhysicalVolumeLayout> {
  for (const [what, id] of [['pvId', spec.pvId], ['vgId', spec.vgId], ['lvId', spec.lvId]] as const) {
    if (!/^[0-9A-Za-z]{32}$/.test(id)) throw new Error(`${what} must be 32 characters of [0-9A-Za-z], got '${id}'`);
  }
  if (spec.partitionBytes % SECTOR !== 0) throw new Error('the partition size must be a whole number of sectors');
  const layout = planPhysicalVolume(spec);
  const text = Buffer.from(`${volumeGroupText(spec, layout)}\0`, 'latin1');
  const mdaSize = PE_START_BYTES - MDA_OFFSET;
  if (MDA_HEADER_SIZE + text.length > mdaSize) throw new Error('the volume group metadata does not fit its metadata area');

  const label = Buffer.alloc(SECTOR);
  label.write('LABELONE', 0, 'latin1');
  label.writeBigUInt64LE(1n, 8); // the sector this label is in
  label.writeUInt32LE(32, 20); // the PV header follows the 32-byte label header
  label.write('LVM2 001', 24, 'latin1');
  let at = 32;
  label.write(spec.pvId, at, 'latin1');
  at += 32;
  label.writeBigUInt64LE(BigInt(spec.partitionBytes), at);
  at += 8;
  at = writeLocations(label, at, [[PE_START_BYTES, 0]]); // data areas (size 0: to the end of the device)
  at = writeLocations(label, at, [[MDA_OFFSET, mdaSize]]); // metadata areas
  label.writeUInt32LE(2, at); // PV header extension, version 2
  label.writeUInt32LE(1, at + 4); // PV_EXT_USED: the PV belongs to a volume group
  writeLocations(label, at + 8, []); // no boot loader areas
  label.writeUInt32LE(lvmCrc(label.subarray(20)), 16);

  const mda = Buffer.alloc(MDA_HEADER_SIZE);
  MDA_MAGIC.copy(mda, 4);
  mda.writeUInt32LE(1, 20);
  mda.writeBigUInt64LE(BigInt(MDA_OFFSET), 24);
  mda.writeBigUInt64LE(BigInt(mdaSize), 32);
  // raw_locns[0]: the metadata text right after this header; then a zero terminator.
  mda.writeBigUInt64LE(BigInt(MDA_HEADER_SIZE), 40);
  mda.writeBigUInt64LE(BigInt(text.length), 48);
  mda.writeUInt32LE(lvmCrc(text), 56);
  mda.writeUInt32LE(lvmCrc(mda.subarray(4)), 0);

  const fh = await open(image, 'r+');
  try {
    const base = spec.partitionOffsetBytes;
    await fh.write(Buffer.alloc(SECTOR), 0, SECTOR, base); // sector 0 stays empty, as pvcreate leaves it
    await fh.write(label, 0, SECTOR, base + SECTOR);
    await fh.write(mda, 0, MDA_HEADER_SIZE, base + MDA_OFFSET);
    await fh.write(text, 0, text.length, base + MDA_OFFSET + MDA_HEADER_SIZE);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return layout;
}

function writeLocations(buf: Buffer, at: number, locations: Array<[number, number]>): number {
  for (const [offset, size] of [...locations, [0, 0] as [number, number]]) {
    buf.writeBigUInt64LE(BigInt(offset), at);
    buf.writeBigUInt64LE(BigInt(size), at + 8);
    at += 16;
  }
  return at;
}

/** LVM's metadata as `vgcreate`/`lvcreate` write it (lib/format_text/export.c), the fields GRUB's lvm module reads included. */
export function volumeGroupText(spec: PhysicalVolumeSpec, layout: PhysicalVolumeLayout): string {
  const sectors = spec.partitionBytes / SECTOR;
  return [
    `${spec.vgName} {`,
    `id = "${dashed(spec.vgId)}"`,
    'seqno = 3',
    'format = "lvm2"',
    'status = ["RESIZEABLE", "READ", "WRITE"]',
    'flags = []',
    `extent_size = ${EXTENT_BYTES / SECTOR}`,
    'max_lv = 0',
    'max_pv = 0',
    'metadata_copies = 0',
    '',
    'physical_volumes {',
    '',
    'pv0 {',
    `id = "${dashed(spec.pvId)}"`,
    `device = "${spec.deviceHint}"`,
    '',
    'status = ["ALLOCATABLE"]',
    'flags = []',
    `dev_size = ${sectors}`,
    `pe_start = ${PE_START_BYTES / SECTOR}`,
    `pe_count = ${layout.extents}`,
    '}',
    '}',
    '',
    'logical_volumes {',
    '',
    `${spec.lvName} {`,
    `id = "${dashed(spec.lvId)}"`,
    'status = ["READ", "WRITE", "VISIBLE"]',
    'flags = []',
    `creation_time = ${spec.creationTime}`,
    `creation_host = "${spec.creationHost}"`,
    'segment_count = 1',
    '',
    'segment1 {',
    'start_extent = 0',
    `extent_count = ${layout.extents}`,
    '',
    'type = "striped"',
    'stripe_count = 1',
    '',
    'stripes = [',
    '"pv0", 0',
    ']',
    '}',
    '}',
    '}',
    '',
    '}',
    '# Generated by vmigrate\'s test guest builder in the format of LVM2 2.03',
    '',
    'contents = "Text Format Volume Group"',
    'version = 1',
    '',
    'description = ""',
    '',
    `creation_host = "${spec.creationHost}"`,
    `creation_time = ${spec.creationTime}`,
    '',
  ].join('\n');
}

/** An id in LVM's display form: 6-4-4-4-4-4-6. */
export function dashed(id: string): string {
  return [id.slice(0, 6), id.slice(6, 10), id.slice(10, 14), id.slice(14, 18), id.slice(18, 22), id.slice(22, 26), id.slice(26)].join('-');
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** LVM's calc_crc (lib/misc/crc.c): CRC-32 without the usual inversions, from INITIAL_CRC. */
export function lvmCrc(buf: Uint8Array, initial = INITIAL_CRC): number {
  let crc = initial >>> 0;
  for (const b of buf) crc = (CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8)) >>> 0;
  return crc >>> 0;
}
