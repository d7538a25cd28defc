/**
 * Identifies what a partition (or a whole disk) holds from superblock magic alone, like `blkid -p` does, for the
 * types a migrated guest is likely to have. Names follow blkid's TYPE values so results can be cross-checked.
 */
import type { FilesystemInfo, ReadAt } from './disk-layout-types';
import { formatUuid } from './guid';

/** Enough to reach every superblock below (btrfs sits at 64 KiB; swap's magic at the end of a 64 KiB page). */
const PROBE_BYTES = 0x10000 + 0x1000;

export interface ProbeResult {
  filesystem: FilesystemInfo;
  encrypted?: boolean;
}

type Prober = (b: Buffer) => ProbeResult | undefined;

// LUKS/LVM/XFS/btrfs first: their magic is unambiguous, while FAT/NTFS boot sectors can linger under other formats.
const PROBERS: readonly Prober[] = [probeLuks, probeLvm2, probeXfs, probeBtrfs, probeExt, probeSwap, probeNtfs, probeBitLocker, probeVfat];

export async function probeFilesystem(read: ReadAt, offset: number, size: number): Promise<ProbeResult | undefined> {
  const length = Math.min(PROBE_BYTES, size);
  if (length < 512) return undefined;
  const head = await read(offset, length);
  for (const probe of PROBERS) {
    const found = probe(head);
    if (found) return found;
  }
  return undefined;
}

function has(b: Buffer, at: number, magic: string | Buffer): boolean {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic;
  return b.length >= at + m.length && b.subarray(at, at + m.length).equals(m);
}

/** NUL- (or space-) padded text field; undefined when empty. */
function text(b: Buffer, at: number, length: number, encoding: BufferEncoding = 'utf8', trimSpaces = false): string | undefined {
  let raw = b.subarray(at, at + length);
  const nul = raw.indexOf(0);
  if (nul !== -1) raw = raw.subarray(0, nul);
  let s = raw.toString(encoding);
  if (trimSpaces) s = s.replace(/ +$/, '');
  return s.length > 0 ? s : undefined;
}

function info(type: string, fields: { label?: string; uuid?: string; version?: string }): FilesystemInfo {
  const out: FilesystemInfo = { type };
  if (fields.label !== undefined) out.label = fields.label;
  if (fields.uuid !== undefined) out.uuid = fields.uuid;
  if (fields.version !== undefined) out.version = fields.version;
  return out;
}

function probeLuks(b: Buffer): ProbeResult | undefined {
  if (!has(b, 0, Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]))) return undefined;
  const version = b.readUInt16BE(6);
  // LUKS2 has a label at 24; both versions keep the UUID as text at 168.
  const label = version === 2 ? text(b, 24, 48) : undefined;
  return { filesystem: info('crypto_LUKS', { label, uuid: text(b, 168, 40, 'latin1'), version: String(version) }), encrypted: true };
}

function probeLvm2(b: Buffer): ProbeResult | undefined {
  for (let sector = 0; sector < 4; sector++) {
    const at = sector * 512;
    if (!has(b, at, 'LABELONE') || !has(b, at + 24, 'LVM2 001')) continue;
    const pvHeader = at + b.readUInt32LE(at + 20);
    const id = b.toString('latin1', pvHeader, pvHeader + 32);
    // blkid groups the 32-character PV id 6-4-4-4-4-4-6.
    const uuid = [id.slice(0, 6), id.slice(6, 10), id.slice(10, 14), id.slice(14, 18), id.slice(18, 22), id.slice(22, 26), id.slice(26)].join('-');
    return { filesystem: info('LVM2_member', { uuid, version: 'LVM2 001' }) };
  }
  return undefined;
}

function probeXfs(b: Buffer): ProbeResult | undefined {
  if (!has(b, 0, 'XFSB')) return undefined;
  return { filesystem: info('xfs', { label: text(b, 108, 12), uuid: formatUuid(b, 32) }) };
}

function probeBtrfs(b: Buffer): ProbeResult | undefined {
  const sb = 0x10000;
  if (!has(b, sb + 0x40, '_BHRfS_M')) return undefined;
  return { filesystem: info('btrfs', { label: text(b, sb + 0x12b, 256), uuid: formatUuid(b, sb + 0x20) }) };
}

// ext3 understands only these feature bits; anything else means the volume needs ext4 (blkid's rule).
const EXT3_INCOMPAT = 0x0002 | 0x0004 | 0x0010; // filetype, recover, meta_bg
const EXT3_RO_COMPAT = 0x0001 | 0x0002 | 0x0004; // sparse_super, large_file, btree_dir
const HAS_JOURNAL = 0x0004;

function probeExt(b: Buffer): ProbeResult | undefined {
  const sb = 1024;
  if (b.length < sb + 264 || b.readUInt16LE(sb + 56) !== 0xef53) return undefined;
  const compat = b.readUInt32LE(sb + 92);
  const incompat = b.readUInt32LE(sb + 96);
  const roCompat = b.readUInt32LE(sb + 100);
  const type = incompat & ~EXT3_INCOMPAT || roCompat & ~EXT3_RO_COMPAT ? 'ext4' : compat & HAS_JOURNAL ? 'ext3' : 'ext2';
  return { filesystem: info(type, { label: text(b, sb + 120, 16), uuid: formatUuid(b, sb + 104) }) };
}

function probeSwap(b: Buffer): ProbeResult | undefined {
  for (const page of [4096, 8192, 16384, 65536]) {
    const magic = page - 10;
    if (has(b, magic, 'SWAPSPACE2')) return { filesystem: info('swap', { label: text(b, 1052, 16), uuid: formatUuid(b, 1036), version: '1' }) };
    if (has(b, magic, 'SWAP-SPACE')) return { filesystem: info('swap', { version: '0' }) };
    // A hibernation image overwrote the swap signature: the guest was suspended to this swap area.
    if (has(b, magic, 'S1SUSPEND') || has(b, magic, 'ULSUSPEND') || has(b, magic, 'LINHIB0001')) {
      return { filesystem: info('swsuspend', {}) };
    }
  }
  return undefined;
}

function probeNtfs(b: Buffer): ProbeResult | undefined {
  if (!has(b, 3, 'NTFS    ')) return undefined;
  // The volume label lives in the MFT ($Volume); the serial in the boot sector is what blkid reports as UUID.
  const serial = b.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
  return { filesystem: info('ntfs', { uuid: serial }) };
}

function probeBitLocker(b: Buffer): ProbeResult | undefined {
  if (!has(b, 3, '-FVE-FS-')) return undefined;
  return { filesystem: info('BitLocker', {}), encrypted: true };
}

function probeVfat(b: Buffer): ProbeResult | undefined {
  if (b[510] !== 0x55 || b[511] !== 0xaa) return undefined;
  const bytesPerSector = b.readUInt16LE(11);
  const sectorsPerCluster = b[13];
  const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (!isPow2(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096 || !isPow2(sectorsPerCluster)) return undefined;
  if (b.readUInt16LE(14) === 0 || b[16] < 1 || b[16] > 2) return undefined; // reserved sectors, FAT count
  const fat32 = b.readUInt16LE(22) === 0;
  const ext = fat32 ? 64 : 36; // extended BPB: drive number, …, serial (+3), label (+7), type (+18)
  const fsType = b.toString('latin1', ext + 18, ext + 26);
  if (!fsType.startsWith('FAT')) return undefined;
  const serial = b.readUInt32LE(ext + 3).toString(16).toUpperCase().padStart(8, '0');
  let label = text(b, ext + 7, 11, 'latin1', true);
  if (label === 'NO NAME') label = undefined;
  const version = fat32 ? 'FAT32' : fsType.trim() === 'FAT12' ? 'FAT12' : 'FAT16';
  return { filesystem: info('vfat', { label, uuid: `${serial.slice(0, 4)}-${serial.slice(4)}`, version }) };
}
