/**
 * The copy phase: each lane takes the next chunk of the grid, reads its data ranges (round-robin over the source
 * connections), digests them, writes the ranges that are not all zeros at the same offsets, and reports the chunk
 * finished. Zero extents are never read nor written (the target starts out zeroed/sparse).
 */
import { abortable } from './abortable';
import type { BlockSource, BlockTarget } from './block-device';
import type { BufferPool } from './buffer-pool';
import type { Checkpointer } from './checkpointer';
import { digestChunk, zeroChunkDigest, type DataPiece } from './chunk-digest';
import type { ByteRange, ChunkPlan, ChunkPlanner } from './chunk-planner';
import type { CopyCounters, ProgressReporter } from './copy-counters';
import type { LeafHasher } from './leaf-hasher';
import { runLanes } from './lane-pool';

export interface CopyPhase {
  sources: readonly BlockSource[];
  target: BlockTarget;
  planner: ChunkPlanner;
  checkpointer: Checkpointer;
  counters: CopyCounters;
  progress: ProgressReporter;
  inFlight: number;
  hasher: LeafHasher;
  /** chunkSize slots: a chunk's ranges are read into one slot at their offsets within the chunk. */
  pool: BufferPool;
  stop: AbortController;
}

export async function copyChunks(phase: CopyPhase): Promise<void> {
  const { sources, target, counters, stop } = phase;
  let turn = 0;

  const read = async (range: ByteRange, slot: Buffer, chunkOffset: number): Promise<DataPiece> => {
    const source = sources[turn++ % sources.length];
    let data: Buffer;
    if (source.readInto) {
      data = slot.subarray(range.offset - chunkOffset, range.offset - chunkOffset + range.length);
      await abortable(source.readInto(range.offset, data, stop.signal), stop.signal);
    } else {
      data = await abortable(source.read(range.offset, range.length, stop.signal), stop.signal);
    }
    if (data.length !== range.length) {
      throw new Error(`short read from source at offset ${range.offset}: got ${data.length} of ${range.length} bytes`);
    }
    counters.bytesRead += data.length;
    return { offset: range.offset, data };
  };

  const copyChunk = async (plan: ChunkPlan): Promise<void> => {
    if (plan.dataRanges.length === 0) {
      counters.bytesZeroSkipped += plan.length;
      phase.checkpointer.finish(plan.index, zeroChunkDigest(plan.length));
      return;
    }
    // On failure the slot is dropped, not released: an abandoned read or hash might still touch it.
    const slot = phase.pool.acquire();
    const pieces = await Promise.all(plan.dataRanges.map((range) => read(range, slot, plan.offset)));
    stop.signal.throwIfAborted();
    const { digest, pieces: digested } = await digestChunk(phase.hasher, plan.offset, plan.length, pieces);
    stop.signal.throwIfAborted();
    let dataBytes = 0;
    for (const piece of digested) {
      dataBytes += piece.data.length;
      if (piece.allZero) {
        counters.bytesZeroSkipped += piece.data.length;
        continue;
      }
      await target.write(piece.offset, piece.data);
      counters.bytesWritten += piece.data.length;
    }
    counters.bytesZeroSkipped += plan.length - dataBytes;
    phase.pool.release(slot);
    phase.checkpointer.finish(plan.index, digest);
    phase.progress.tick();
  };

  await runLanes(phase.inFlight, () => phase.planner.next(), copyChunk, stop);
}
