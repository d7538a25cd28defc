/**
 * Turns an allocation map into work on the fixed chunk grid: for each chunk, the byte ranges that hold data.
 * The map is asked lazily (one answer ahead at most) and answers may be partial, so huge or very fragmented disks
 * never hold more than one reply in memory.
 */
import type { Extent } from './block-device';

export interface AllocationMap {
  extents(offset: number, length: number): Promise<Extent[]>;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ChunkPlan {
  index: number;
  offset: number;
  length: number;
  /** Sorted, non-overlapping, merged; empty when the whole chunk is a zero extent. */
  dataRanges: ByteRange[];
}

/** Treats everything as data: for targets that cannot report allocation. */
export const ALL_DATA: AllocationMap = {
  extents: async (offset, length) => [{ offset, length, zero: false }],
};

export class ChunkPlanner {
  private buffered: Extent[] = [];
  /** buffered[0 .. head) are behind us; compacted now and then so a huge answer is not re-spliced per chunk. */
  private head = 0;
  private mappedUpTo: number;
  private nextIndex: number;

  constructor(
    private readonly map: AllocationMap,
    private readonly size: number,
    private readonly chunkSize: number,
    firstIndex: number,
  ) {
    this.nextIndex = firstIndex;
    this.mappedUpTo = Math.min(firstIndex * chunkSize, size);
  }

  /** The next chunk, or undefined past the end. Callers must not call concurrently. */
  async next(): Promise<ChunkPlan | undefined> {
    const offset = this.nextIndex * this.chunkSize;
    if (offset >= this.size) return undefined;
    const end = Math.min(offset + this.chunkSize, this.size);
    while (this.mappedUpTo < end) await this.fetch();
    const dataRanges: ByteRange[] = [];
    // Buffered extents are sorted and contiguous: only a prefix can be finished with, so drop from the front.
    let drop = 0;
    for (let i = this.head; i < this.buffered.length; i++) {
      const extent = this.buffered[i];
      if (extent.offset >= end) break;
      const start = Math.max(extent.offset, offset);
      const stop = Math.min(extent.offset + extent.length, end);
      if (extent.offset + extent.length <= end) drop++;
      if (extent.zero || stop <= start) continue;
      const last = dataRanges[dataRanges.length - 1];
      if (last && last.offset + last.length === start) last.length += stop - start;
      else dataRanges.push({ offset: start, length: stop - start });
    }
    this.head += drop;
    if (this.head > 1024 && this.head * 2 > this.buffered.length) {
      this.buffered = this.buffered.slice(this.head);
      this.head = 0;
    }
    return { index: this.nextIndex++, offset, length: end - offset, dataRanges };
  }

  private async fetch(): Promise<void> {
    const from = this.mappedUpTo;
    const answer = await this.map.extents(from, this.size - from);
    let at = from;
    for (const extent of answer) {
      const start = Math.max(extent.offset, at);
      const end = Math.min(extent.offset + extent.length, this.size);
      if (end <= start) continue; // entirely before `at` (overlap) or empty: nothing new
      if (start !== at) {
        throw new Error(`allocation map has a gap: asked from ${from}, next extent starts at ${extent.offset}, expected ${at}`);
      }
      this.buffered.push({ offset: start, length: end - start, zero: extent.zero });
      at = end;
    }
    if (at === from) throw new Error(`allocation map returned no extents for offset ${from} (disk size ${this.size})`);
    this.mappedUpTo = at;
  }
}
