/**
 * GUID partition table: primary header at LBA 1, backup at the last LBA; both CRC-checked, the backup used when the
 * primary is damaged. Tried with 512- and 4096-byte sectors.
 */
import { crc32 } from 'node:zlib';
import type { PartitionInfo, ReadAt } from './disk-layout-types';
import { formatMixedEndianGuid } from './guid';
import { GPT_TYPE_NAMES } from './partition-type-names';

const SIGNATURE = 'EFI PART';
const MAX_ENTRY_BYTES = 4 * 1024 * 1024; // 128 entries of 128 bytes is usual; refuse absurd claims

export interface GptTable {
  sectorSize: number;
  diskGuid: string;
  partitions: PartitionInfo[];
}

export async function readGpt(read: ReadAt, diskSize: number): Promise<GptTable | undefined> {
  for (const sectorSize of [512, 4096]) {
    const lastLba = Math.floor(diskSize / sectorSize) - 1;
    if (lastLba < 2) continue;
    for (const headerLba of [1, lastLba]) {
      const table = await readAt(read, diskSize, sectorSize, headerLba);
      if (table) return table;
    }
  }
  return undefined;
}

async function readAt(read: ReadAt, diskSize: number, sectorSize: number, headerLba: number): Promise<GptTable | undefined> {
  const header = await read(headerLba * sectorSize, sectorSize);
  if (header.toString('latin1', 0, 8) !== SIGNATURE) return undefined;
  const headerSize = header.readUInt32LE(12);
  if (headerSize < 92 || headerSize > sectorSize) return undefined;
  const withoutCrc = Buffer.from(header.subarray(0, headerSize));
  withoutCrc.writeUInt32LE(0, 16);
  if (crc32(withoutCrc) !== header.readUInt32LE(16)) return undefined;
  if (Number(header.readBigUInt64LE(24)) !== headerLba) return undefined;

  const entriesLba = Number(header.readBigUInt64LE(72));
  const count = header.readUInt32LE(80);
  const entrySize = header.readUInt32LE(84);
  const bytes = count * entrySize;
  if (entrySize < 128 || entrySize % 8 !== 0 || bytes > MAX_ENTRY_BYTES || entriesLba * sectorSize + bytes > diskSize) return undefined;
  const entries = await read(entriesLba * sectorSize, bytes);
  if (crc32(entries) !== header.readUInt32LE(88)) return undefined;

  const partitions: PartitionInfo[] = [];
  for (let i = 0; i < count; i++) {
    const e = entries.subarray(i * entrySize, (i + 1) * entrySize);
    if (e.subarray(0, 16).every((b) => b === 0)) continue; // unused slot
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    if (last < first) continue;
    const type = formatMixedEndianGuid(e, 0);
    const p: PartitionInfo = { number: i + 1, start: first * sectorSize, size: (last - first + 1) * sectorSize, type };
    const typeName = GPT_TYPE_NAMES[type];
    if (typeName) p.typeName = typeName;
    const name = utf16Name(e.subarray(56, 128));
    if (name) p.name = name;
    p.uuid = formatMixedEndianGuid(e, 16);
    partitions.push(p);
  }
  return { sectorSize, diskGuid: formatMixedEndianGuid(header, 56), partitions };
}

function utf16Name(raw: Buffer): string {
  const text = raw.toString('utf16le');
  const nul = text.indexOf('\0');
  return nul === -1 ? text : text.slice(0, nul);
}
