/**
 * Turns the areas of a copy into work on a fixed chunk grid: for each grid chunk an area touches, its pieces, each
 * either data (read it from the source) or zero (known to be zeros: a hole the source reported, or stale data to
 * clear). Chunks no area touches are not planned at all, so an incremental sync of a huge disk costs what changed.
 *
 * A chunk's ordinal (its place among planned chunks) indexes its record in the digest log; the plan is a pure
 * function of the areas, the grid and the disk size, so every attempt of one copy numbers chunks the same way.
 * The allocation map is asked lazily (one answer ahead at most) and its answers may be partial, so huge or very
 * fragmented disks never hold more than one reply in memory.
 */
import type { Extent } from './block-device';

export interface AllocationMap {
  extents(offset: number, length: number): Promise<Extent[]>;
}

/** `copy`: make the target hold the source's bytes; `zero`: make it hold zeros (stale data outside the areas). */
export interface PlannedRange {
  start: number;
  length: number;
  kind: 'copy' | 'zero';
}

export interface ChunkPiece {
  offset: number;
  length: number;
  /** data: read from the source; zero: the target must read zeros here. */
  kind: 'data' | 'zero';
}

export interface ChunkPlan {
  ordinal: number;
  /** Grid index: offset / chunkSize. */
  index: number;
  /** Grid chunk start, and its end (the disk's end for the last one). */
  offset: number;
  end: number;
  /** Sorted, adjacent pieces of one range merged when of one kind; together they are what the chunk covers. */
  pieces: ChunkPiece[];
  /** Bytes covered (sum of the pieces). */
  coveredBytes: number;
}

export class AreaPlanner {
  private rangeAt = 0;
  private nextIndex: number;
  private ordinal: number;
  private mapped: Extent[] = [];
  private mappedHead = 0;
  private mappedFrom = 0;
  private mappedUpTo = 0;

  /**
   * `ranges` sorted and non-overlapping. `map` splits copy ranges into data and holes (undefined: all data).
   * `firstIndex`: grid index to start at (a resume); chunks below it are skipped but counted in the ordinals.
   */
  constructor(
    private readonly ranges: readonly PlannedRange[],
    private readonly map: AllocationMap | undefined,
    private readonly size: number,
    private readonly chunkSize: number,
    firstIndex = 0,
  ) {
    this.nextIndex = firstIndex;
    this.ordinal = countPlannedChunksBelow(ranges, chunkSize, firstIndex);
  }

  /** The next planned chunk, or undefined past the last area. Callers must not call concurrently. */
  async next(): Promise<ChunkPlan | undefined> {
    const { chunkSize, ranges } = this;
    // Skip ranges that end before the next chunk, then jump to the first chunk the next range touches.
    while (this.rangeAt < ranges.length && end(ranges[this.rangeAt]) <= this.nextIndex * chunkSize) this.rangeAt++;
    if (this.rangeAt >= ranges.length) return undefined;
    const index = Math.max(this.nextIndex, Math.floor(ranges[this.rangeAt].start / chunkSize));
    const offset = index * chunkSize;
    const chunkEnd = Math.min(offset + chunkSize, this.size);
    const pieces: ChunkPiece[] = [];
    for (let r = this.rangeAt; r < ranges.length && ranges[r].start < chunkEnd; r++) {
      const range = ranges[r];
      const start = Math.max(range.start, offset);
      const stop = Math.min(end(range), chunkEnd);
      if (range.kind === 'zero') push(pieces, { offset: start, length: stop - start, kind: 'zero' });
      else await this.splitByMap(pieces, start, stop, end(range));
    }
    this.nextIndex = index + 1;
    const coveredBytes = pieces.reduce((s, p) => s + p.length, 0);
    return { ordinal: this.ordinal++, index, offset, end: chunkEnd, pieces, coveredBytes };
  }

  private async splitByMap(out: ChunkPiece[], start: number, stop: number, rangeEnd: number): Promise<void> {
    if (!this.map) return push(out, { offset: start, length: stop - start, kind: 'data' });
    if (start < this.mappedFrom || start >= this.mappedUpTo) this.resetMap(start);
    while (this.mappedUpTo < stop) await this.fetch(rangeEnd);
    let drop = 0;
    for (let i = this.mappedHead; i < this.mapped.length; i++) {
      const extent = this.mapped[i];
      if (extent.offset >= stop) break;
      const s = Math.max(extent.offset, start);
      const e = Math.min(extent.offset + extent.length, stop);
      if (extent.offset + extent.length <= stop) drop++;
      if (e > s) push(out, { offset: s, length: e - s, kind: extent.zero ? 'zero' : 'data' });
    }
    // Extents are sorted and contiguous: only a prefix can be finished with.
    this.mappedHead += drop;
    if (this.mappedHead > 1024 && this.mappedHead * 2 > this.mapped.length) {
      this.mapped = this.mapped.slice(this.mappedHead);
      this.mappedHead = 0;
    }
    if (this.mappedHead < this.mapped.length) this.mappedFrom = Math.max(this.mappedFrom, this.mapped[this.mappedHead].offset);
  }

  private resetMap(at: number): void {
    this.mapped = [];
    this.mappedHead = 0;
    this.mappedFrom = at;
    this.mappedUpTo = at;
  }

  /** Extends the buffered map from mappedUpTo, asking no further than the current range's end. */
  private async fetch(rangeEnd: number): Promise<void> {
    const from = this.mappedUpTo;
    const answer = await (this.map as AllocationMap).extents(from, rangeEnd - from);
    let at = from;
    for (const extent of answer) {
      const s = Math.max(extent.offset, at);
      const e = Math.min(extent.offset + extent.length, rangeEnd);
      if (e <= s) continue; // before `at` (overlap) or empty: nothing new
      if (s !== at) throw new Error(`allocation map has a gap: asked from ${from}, next extent starts at ${extent.offset}, expected ${at}`);
      this.mapped.push({ offset: s, length: e - s, zero: extent.zero });
      at = e;
    }
    if (at === from) throw new Error(`allocation map returned no extents for offset ${from} (disk size ${this.size})`);
    this.mappedUpTo = at;
  }
}

/** How many grid chunks below `firstIndex` the ranges touch (their ordinals are taken). */
export function countPlannedChunksBelow(ranges: readonly PlannedRange[], chunkSize: number, firstIndex: number): number {
  let count = 0;
  let last = -1;
  for (const range of ranges) {
    const first = Math.max(Math.floor(range.start / chunkSize), last + 1);
    const lastTouched = Math.min(Math.floor((end(range) - 1) / chunkSize), firstIndex - 1);
    if (lastTouched >= first) count += lastTouched - first + 1;
    last = Math.max(last, Math.floor((end(range) - 1) / chunkSize));
    if (last >= firstIndex - 1 && range.start >= firstIndex * chunkSize) break;
  }
  return count;
}

function end(r: { start: number; length: number }): number {
  return r.start + r.length;
}

function push(out: ChunkPiece[], piece: ChunkPiece): void {
  if (piece.length <= 0) return;
  const last = out[out.length - 1];
  if (last && last.kind === piece.kind && last.offset + last.length === piece.offset) last.length += piece.length;
  else out.push(piece);
}
