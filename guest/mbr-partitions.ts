/** MBR partition table, including logical partitions chained through EBRs inside an extended partition. */
import type { PartitionInfo, ReadAt } from './disk-layout-types';
import { MBR_EXTENDED_TYPES, MBR_TYPE_NAMES } from './partition-type-names';

const SECTOR = 512;
const MAX_LOGICAL = 128; // guards against EBR chains that loop

interface RawEntry {
  status: number;
  type: number;
  lbaStart: number;
  sectors: number;
}

export interface MbrTable {
  diskId: string;
  protectiveGpt: boolean;
  partitions: PartitionInfo[];
}

/** Parses sector 0 as an MBR; undefined when it is not one (no 0x55AA, invalid status bytes, or a FS boot sector). */
export async function readMbr(read: ReadAt, diskSize: number): Promise<MbrTable | undefined> {
  if (diskSize < SECTOR) return undefined;
  const sector = await read(0, SECTOR);
  const entries = parseBootRecord(sector);
  if (!entries || looksLikeFilesystemBootSector(sector)) return undefined;
  const diskId = `0x${sector.readUInt32LE(440).toString(16).padStart(8, '0')}`;
  const protectiveGpt = entries.some((e) => e.type === 0xee);
  const partitions: PartitionInfo[] = [];
  for (const [slot, e] of entries.entries()) {
    if (e.type === 0 || e.sectors === 0) continue;
    partitions.push(toPartition(slot + 1, e, e.lbaStart));
    if (MBR_EXTENDED_TYPES.has(e.type)) partitions.push(...(await readLogical(read, diskSize, e.lbaStart)));
  }
  return { diskId, protectiveGpt, partitions };
}

async function readLogical(read: ReadAt, diskSize: number, extendedLba: number): Promise<PartitionInfo[]> {
  const out: PartitionInfo[] = [];
  const seen = new Set<number>();
  for (let ebrLba = extendedLba; out.length < MAX_LOGICAL && !seen.has(ebrLba); ) {
    seen.add(ebrLba);
    if ((ebrLba + 1) * SECTOR > diskSize) break;
    const entries = parseBootRecord(await read(ebrLba * SECTOR, SECTOR));
    if (!entries) break;
    const [logical, next] = entries;
    // The logical partition is relative to its EBR; the next EBR is relative to the extended partition.
    if (logical.type !== 0 && logical.sectors !== 0) out.push(toPartition(5 + out.length, logical, ebrLba + logical.lbaStart));
    if (!MBR_EXTENDED_TYPES.has(next.type) || next.sectors === 0) break;
    ebrLba = extendedLba + next.lbaStart;
  }
  return out;
}

function parseBootRecord(sector: Buffer): RawEntry[] | undefined {
  if (sector.length < SECTOR || sector[510] !== 0x55 || sector[511] !== 0xaa) return undefined;
  const entries: RawEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const at = 446 + i * 16;
    const status = sector[at];
    if (status !== 0x00 && status !== 0x80) return undefined;
    entries.push({ status, type: sector[at + 4], lbaStart: sector.readUInt32LE(at + 8), sectors: sector.readUInt32LE(at + 12) });
  }
  return entries;
}

/** FAT/NTFS/exFAT volumes also end sector 0 with 0x55AA; their partition "entries" are boot code. */
function looksLikeFilesystemBootSector(sector: Buffer): boolean {
  const oem = sector.toString('latin1', 3, 11);
  if (oem === 'NTFS    ' || oem === 'EXFAT   ' || oem === '-FVE-FS-') return true;
  const jump = sector[0] === 0xeb || sector[0] === 0xe9;
  return jump && (sector.toString('latin1', 82, 87) === 'FAT32' || sector.toString('latin1', 54, 57) === 'FAT');
}

function toPartition(number: number, e: RawEntry, lbaStart: number): PartitionInfo {
  const p: PartitionInfo = { number, start: lbaStart * SECTOR, size: e.sectors * SECTOR, type: e.type.toString(16) };
  const typeName = MBR_TYPE_NAMES[e.type];
  if (typeName) p.typeName = typeName;
  if (e.status === 0x80) p.bootable = true;
  return p;
}
