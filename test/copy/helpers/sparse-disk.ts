/** Builds in-memory test disks: random data in the given ranges, zeros (declared as zero extents) elsewhere. */
import { createHash, randomBytes } from 'node:crypto';
import type { Extent } from '../../../copy/block-device';

export interface SparseDisk {
  content: Buffer;
  allocation: Extent[];
  allocatedBytes: number;
}

export const MiB = 1024 * 1024;

export function sparseDisk(size: number, dataRanges: Array<[offset: number, length: number]>): SparseDisk {
  const content = Buffer.alloc(size);
  const sorted = [...dataRanges].sort((a, b) => a[0] - b[0]);
  const allocation: Extent[] = [];
  let at = 0;
  let allocatedBytes = 0;
  for (const [offset, length] of sorted) {
    if (offset < at || offset + length > size) throw new Error("test ranges overlap or exceed the disk");
    if (offset > at) allocation.push({ offset: at, length: offset - at, zero: true });
    randomBytes(length).copy(content, offset);
    allocation.push({ offset, length, zero: false });
    allocatedBytes += length;
    at = offset + length;
  }
  if (at < size) allocation.push({ offset: at, length: size - at, zero: true });
  return { content, allocation, allocatedBytes };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Allocated bytes of `allocation` at or above `from`. */
export function allocatedAbove(allocation: readonly Extent[], from: number): number {
  let total = 0;
  for (const e of allocation) {
    if (e.zero) continue;
    total += Math.max(0, e.offset + e.length - Math.max(e.offset, from));
  }
  return total;
}
