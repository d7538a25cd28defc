/**
 * What the Guest Fixes stage inspects in this release: the partition table (GPT, else MBR with logical partitions)
 * and, per partition or for the whole disk, the file system by superblock magic. Pure TypeScript over a read
 * function, so it runs against an NBD export or a target volume alike.
 */
import type { DiskLayout, PartitionInfo, ReadAt } from './disk-layout-types';
import { probeFilesystem } from './filesystem-probe';
import { readGpt } from './gpt-partitions';
import { readMbr } from './mbr-partitions';
import { MBR_EXTENDED_TYPES } from './partition-type-names';

export type { DiskLayout, FilesystemInfo, PartitionInfo, ReadAt } from './disk-layout-types';

export async function inspectDiskLayout(read: ReadAt, size: number): Promise<DiskLayout> {
  // Never ask the reader for bytes past the end of the disk, whatever a (possibly corrupt) table claims.
  const boundedRead: ReadAt = (offset, length) => {
    if (offset < 0 || length < 0 || offset + length > size) {
      return Promise.reject(new Error(`read of ${length} bytes at ${offset} is beyond the disk (size ${size})`));
    }
    return read(offset, length);
  };

  const mbr = await readMbr(boundedRead, size);
  if (mbr?.protectiveGpt) {
    const gpt = await readGpt(boundedRead, size);
    if (gpt) {
      return { partitionTable: 'gpt', sectorSize: gpt.sectorSize, diskId: gpt.diskGuid, partitions: await probeAll(boundedRead, size, gpt.partitions) };
    }
  }
  if (mbr) return { partitionTable: 'mbr', sectorSize: 512, diskId: mbr.diskId, partitions: await probeAll(boundedRead, size, mbr.partitions) };

  const layout: DiskLayout = { partitionTable: 'none', sectorSize: 512, partitions: [] };
  const whole = await probeFilesystem(boundedRead, 0, size);
  if (whole) {
    layout.filesystem = whole.filesystem;
    if (whole.encrypted) layout.encrypted = true;
  }
  return layout;
}

async function probeAll(read: ReadAt, size: number, partitions: PartitionInfo[]): Promise<PartitionInfo[]> {
  for (const p of partitions) {
    const isContainer = /^[0-9a-f]{1,2}$/.test(p.type) && MBR_EXTENDED_TYPES.has(parseInt(p.type, 16));
    if (isContainer || p.start >= size) continue;
    const found = await probeFilesystem(read, p.start, Math.min(p.size, size - p.start));
    if (!found) continue;
    p.filesystem = found.filesystem;
    if (found.encrypted) p.encrypted = true;
  }
  return partitions;
}
