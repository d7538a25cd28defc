/**
 * The copy lanes: each takes the next planned chunk, reads its data pieces into one slot (over the source
 * connections, with retries), digests the covered bytes, writes what the target needs at the same offsets, and
 * reports the chunk copied. Holes are never read; onto a fresh target, holes and zero data are not written either.
 *
 * A source request that fails on every try does not abort the other lanes: they finish their chunks (so the
 * durable watermark reaches as far as the source allowed) and the lowest-offset failure is returned.
 */
import type { AreaPlanner, ChunkPlan } from './area-planner';
import type { BlockTarget } from './block-device';
import type { BufferPool } from './buffer-pool';
import { digestChunk, segmentsOf, zeroChunkDigest, type Segment } from './chunk-digest';
import type { CopyCounters, ProgressReporter } from './copy-counters';
import type { CopyLedger } from './copy-ledger';
import { runLanes } from './lane-pool';
import type { LeafHasher } from './leaf-hasher';
import { SourceReadError, type SourceReader } from './source-reader';
import { zeroBytes } from './zeros';

export interface CopyPhase {
  reader: SourceReader;
  target: BlockTarget;
  planner: AreaPlanner;
  ledger: CopyLedger;
  counters: CopyCounters;
  progress: ProgressReporter;
  inFlight: number;
  hasher: LeafHasher;
  /** chunkSize slots: a chunk's pieces are read into one slot at their offsets within the chunk. */
  pool: BufferPool;
  freshTarget: boolean;
  onFirstByte?: () => void;
  stop: AbortController;
}

export async function copyChunks(phase: CopyPhase): Promise<SourceReadError | undefined> {
  const { reader, target, counters, freshTarget } = phase;
  const failures: SourceReadError[] = [];
  let firstByte = true;

  const copyChunk = async (plan: ChunkPlan): Promise<void> => {
    const segments = segmentsOf(plan.pieces);
    const hasData = plan.pieces.some((p) => p.kind === 'data');
    // On failure the slot is dropped, not released: an abandoned read or hash might still touch it.
    const slot = hasData ? phase.pool.acquire() : zeroBytes(0);
    const at = (offset: number, length: number) => slot.subarray(offset - plan.offset, offset - plan.offset + length);
    if (hasData) {
      await Promise.all(plan.pieces.filter((p) => p.kind === 'data').map((p) => reader.readInto(p.offset, at(p.offset, p.length))));
      phase.stop.signal.throwIfAborted();
      if (firstByte) {
        firstByte = false;
        phase.onFirstByte?.();
      }
    }
    const { digest, zero } = await digestChunk(phase.hasher, slot, plan.offset, plan.pieces, segments);
    phase.stop.signal.throwIfAborted();
    const writes: Array<Promise<void>> = [];
    let skippedSome = false;
    for (const piece of plan.pieces) {
      if (piece.kind === 'data') {
        counters.bytesRead += piece.length;
        if (freshTarget && allZero(segments, zero, piece.offset, piece.length)) {
          counters.bytesZeroSkipped += piece.length;
          skippedSome = true;
          continue;
        }
        writes.push(target.write(piece.offset, at(piece.offset, piece.length)));
      } else if (freshTarget) {
        counters.bytesZeroSkipped += piece.length;
        skippedSome = true;
        continue;
      } else {
        writes.push(target.write(piece.offset, zeroBytes(piece.length)));
        counters.bytesZeroed += piece.length;
      }
      counters.bytesWritten += piece.length;
    }
    await Promise.all(writes);
    if (hasData) phase.pool.release(slot);
    phase.ledger.copied(plan, digest, skippedSome);
    phase.progress.tick();
  };

  let draining = false;
  const record = (error: unknown): boolean => {
    if (!(error instanceof SourceReadError) || phase.stop.signal.aborted) return false;
    failures.push(error);
    draining = true;
    return true;
  };
  // A chunk that is all holes onto a fresh target needs no I/O: it is settled here, without a trip through a lane
  // (a sparse disk is mostly such chunks).
  const settleHole = (plan: ChunkPlan): boolean => {
    if (!freshTarget || plan.pieces.some((p) => p.kind === 'data')) return false;
    counters.bytesZeroSkipped += plan.coveredBytes;
    phase.ledger.copied(plan, zeroChunkDigest(segmentsOf(plan.pieces)), true);
    return true;
  };
  await runLanes(
    phase.inFlight,
    async () => {
      try {
        for (;;) {
          if (draining) return undefined;
          const plan = await phase.planner.next();
          if (!plan || !settleHole(plan)) return plan;
          phase.progress.tick();
        }
      } catch (error) {
        if (record(error)) return undefined;
        throw error;
      }
    },
    async (plan) => {
      try {
        await copyChunk(plan);
      } catch (error) {
        if (!record(error)) throw error;
      }
    },
    phase.stop,
  );
  return failures.reduce<SourceReadError | undefined>((low, f) => (low && low.offset <= f.offset ? low : f), undefined);
}

/** Every segment overlapping [offset, offset + length) is zeros. */
function allZero(segments: readonly Segment[], zero: readonly boolean[], offset: number, length: number): boolean {
  const end = offset + length;
  for (let i = 0; i < segments.length; i++) {
    if (segments[i].end <= offset || segments[i].start >= end) continue;
    if (!zero[i]) return false;
  }
  return true;
}
