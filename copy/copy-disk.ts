/**
 * copyDisk: sparse-aware, resumable, verified copy of one disk from one or more connections to the same export.
 *
 * Invariant a crash can rely on: everything below the last published checkpoint (bytesDone) is durable in the target
 * and its source digests are durable in the digest log. A resumed attempt starts at that watermark and never reads
 * below it again; the verification at the end still covers the whole disk.
 */
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { targetAllocationMap } from './allocation-aware-target';
import type { BlockSource, BlockTarget } from './block-device';
import { Checkpointer } from './checkpointer';
import { ChunkPlanner } from './chunk-planner';
import { copyChunks } from './copy-chunks';
import { BufferPool } from './buffer-pool';
import { CopyCounters, ProgressReporter } from './copy-counters';
import {
  DEFAULT_CHECKPOINT_INTERVAL_MS,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_IN_FLIGHT,
  DEFAULT_PROGRESS_INTERVAL_MS,
  DIGEST_LEAF_SIZE,
  type CopyOptions,
  type CopyResult,
} from './copy-options';
import { DigestLog } from './digest-log';
import { InlineLeafHasher, type LeafHasher } from './leaf-hasher';
import { VerificationError } from './verification-error';
import { verifyTarget } from './verify-target';
import { WorkerLeafHasher } from './worker-leaf-hasher';

export type { CopyCheckpoint, CopyOptions, CopyProgress, CopyResult, VerificationResult } from './copy-options';
export { VerificationError } from './verification-error';

export async function copyDisk(sources: BlockSource[], target: BlockTarget, opts: CopyOptions): Promise<CopyResult> {
  const startedAt = Date.now();
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const inFlight = opts.inFlight ?? DEFAULT_IN_FLIGHT;
  const size = checkArguments(sources, target, chunkSize, inFlight);
  opts.signal?.throwIfAborted();

  // Internal stop: the caller's abort, or the first failure of any lane/checkpoint, ends everything promptly.
  const stop = new AbortController();
  // Each in-flight read listens on it (ours plus the source's own); that is expected, not a leak.
  setMaxListeners(inFlight * 4 + 16, stop.signal);
  const forwardAbort = () => stop.abort(opts.signal?.reason);

  const log = await DigestLog.open(opts.digestLogPath, chunkSize, size);
  // Hashing is the copy's biggest CPU cost; the OS schedules these threads against the event loop and the kernel.
  const hashThreads = opts.hashThreads ?? Math.max(1, Math.min(4, availableParallelism()));
  const hasher: LeafHasher = hashThreads > 0 ? new WorkerLeafHasher(hashThreads) : new InlineLeafHasher();
  opts.signal?.addEventListener('abort', forwardAbort, { once: true });
  if (opts.signal?.aborted) forwardAbort(); // aborted while the log was opening
  try {
    const firstIndex = await resumeIndex(log, opts.resumeFrom ?? 0, size, chunkSize);
    const resumedFrom = Math.min(firstIndex * chunkSize, size);
    const counters = new CopyCounters(size);
    counters.bytesDone = counters.bytesCopied = resumedFrom;
    const progress = new ProgressReporter(counters, opts.onProgress, opts.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS);
    const checkpointer = new Checkpointer(
      target,
      log,
      counters,
      chunkSize,
      firstIndex,
      { intervalMs: opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS, bytes: opts.checkpointBytes, onCheckpoint: opts.onCheckpoint },
      (error) => stop.abort(error),
    );

    // One slot per lane at a time, reused by the copy and then the verify phase.
    // Slot memory from the target when it has a preference (O_DIRECT alignment), so writes and re-reads go direct.
    const pool = new BufferPool(chunkSize, target.allocateIoBuffer?.bind(target));
    try {
      const planner = new ChunkPlanner(sources[0], size, chunkSize, firstIndex);
      await copyChunks({ sources, target, planner, checkpointer, counters, progress, inFlight, hasher, pool, stop });
      await checkpointer.complete(); // final flush + log fsync + checkpoint at bytesTotal
    } catch (error) {
      await checkpointer.settle();
      throw error;
    }
    progress.tick(true);

    counters.phase = 'verify';
    const outcome = await verifyTarget({
      target,
      targetMap: targetAllocationMap(target),
      log,
      size,
      chunkSize,
      inFlight,
      hasher,
      pool,
      counters,
      progress,
      stop,
    });
    progress.tick(true);
    if (outcome.firstMismatchOffset !== undefined || !outcome.verification.match) {
      throw new VerificationError(outcome.firstMismatchOffset ?? 0, chunkSize, outcome.verification);
    }
    return {
      bytesTotal: size,
      bytesRead: counters.bytesRead,
      bytesWritten: counters.bytesWritten,
      bytesZeroSkipped: counters.bytesZeroSkipped,
      resumedFrom,
      durationMs: Date.now() - startedAt,
      verification: outcome.verification,
    };
  } finally {
    opts.signal?.removeEventListener('abort', forwardAbort);
    await hasher.close();
    await log.close();
  }
}

function checkArguments(sources: BlockSource[], target: BlockTarget, chunkSize: number, inFlight: number): number {
  if (sources.length === 0) throw new Error('copyDisk needs at least one source connection');
  const size = sources[0].size;
  const other = sources.find((s) => s.size !== size);
  if (other) throw new Error(`source connections disagree on the disk size (${size} vs ${other.size}); they must serve the same export`);
  if (target.size < size) throw new Error(`target (${target.size} bytes) is smaller than the source (${size} bytes)`);
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % DIGEST_LEAF_SIZE !== 0) {
    throw new Error(`chunkSize must be a positive multiple of ${DIGEST_LEAF_SIZE}, got ${chunkSize}`);
  }
  if (!Number.isSafeInteger(inFlight) || inFlight < 1) throw new Error(`inFlight must be a positive integer, got ${inFlight}`);
  return size;
}

/** First chunk to copy: the resume watermark rounded down to the grid, lowered if the log lacks digests below it. */
async function resumeIndex(log: DigestLog, resumeFrom: number, size: number, chunkSize: number): Promise<number> {
  if (!Number.isSafeInteger(resumeFrom) || resumeFrom < 0) throw new Error(`resumeFrom must be a non-negative integer, got ${resumeFrom}`);
  const wanted = resumeFrom >= size ? Math.ceil(size / chunkSize) : Math.floor(resumeFrom / chunkSize);
  return wanted === 0 ? 0 : log.presentPrefix(wanted);
}
