/**
 * The copy engine: make byte areas of a target hold what the same areas of a source hold — resumably, verified,
 * and through source faults. A full copy is one area, the whole disk (copyDisk); a warm migration's sync copies the
 * areas Changed Block Tracking reported (all allocated ones for a full sync, the changed ones for an incremental).
 *
 * Data path: the areas are cut on a fixed chunk grid (area-planner.ts); copy lanes read each chunk's data pieces
 * (holes per the source's allocation map are not read), digest them (chunk-digest.ts) and write them; every few
 * tens of MiB the ledger flushes the target and the digest log, and verification lanes read those chunks back and
 * compare digests while the copy goes on (copy-ledger.ts, verify-chunks.ts).
 *
 * Invariant a crash can rely on: everything below the last published checkpoint (bytesDone, a disk offset on the
 * chunk grid) is durable in the target, was read back and matched, and its source digests are durable in the
 * digest log. A resumed attempt starts at that watermark and never reads below it again.
 */
import { blake3 } from '@napi-rs/blake-hash';
import { setMaxListeners } from 'node:events';
import { isAllocationAware } from './allocation-aware-target';
import { AreaPlanner, countPlannedChunksBelow, type PlannedRange } from './area-planner';
import type { BlockSource, BlockTarget } from './block-device';
import { BufferPool } from './buffer-pool';
import { complementAreas, normaliseAreas, totalLength, type ByteArea } from './byte-areas';
import { copyChunks } from './copy-chunks';
import { CopyCounters, ProgressReporter } from './copy-counters';
import { CopyLedger } from './copy-ledger';
import {
  DEFAULT_CHECKPOINT_INTERVAL_MS,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_FLUSH_BYTES,
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_IN_FLIGHT,
  DEFAULT_PROGRESS_INTERVAL_MS,
  DEFAULT_VERIFY_IN_FLIGHT,
  DIGEST_LEAF_SIZE,
  type CopyOptions,
  type CopyResult,
} from './copy-options';
import { DIGEST_RECORD_SIZE, DigestLog, firstMissingRecord } from './digest-log';
import { acquireLeafHasher } from './shared-leaf-hasher';
import { DEFAULT_READ_RETRY, SourceReader, type SourceReadError } from './source-reader';
import { verifyChunks } from './verify-chunks';

export async function copyAreas(sources: BlockSource[], target: BlockTarget, opts: CopyOptions): Promise<CopyResult> {
  const startedAt = Date.now();
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const inFlight = opts.inFlight ?? DEFAULT_IN_FLIGHT;
  const size = checkArguments(sources, target, chunkSize, inFlight);
  const areas = normaliseAreas(opts.areas ?? [{ start: 0, length: size }], size);
  const freshTarget = opts.freshTarget ?? true;
  opts.signal?.throwIfAborted();

  const zeroRanges = opts.zeroOutside ? await targetDataOutside(target, areas, size) : [];
  const ranges = mergeRanges(areas, zeroRanges);
  const log = await DigestLog.open(opts.digestLogPath, { chunkSize, diskSize: size, plan: planId(ranges, chunkSize, size) });

  // Internal stop: the caller's abort, or the first failure of any lane, flush or checkpoint, ends everything.
  const stop = new AbortController();
  // Each in-flight read listens on it (ours plus the source's own); that is expected, not a leak.
  setMaxListeners(inFlight * 8 + 64, stop.signal);
  const forwardAbort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', forwardAbort, { once: true });
  if (opts.signal?.aborted) forwardAbort();
  const { hasher, release } = acquireLeafHasher(opts.hashThreads);
  try {
    const { firstIndex, firstOrdinal } = await resumePoint(log, ranges, opts.resumeFrom ?? 0, size, chunkSize);
    const resumedFrom = Math.min(firstIndex * chunkSize, size);
    const counters = new CopyCounters(size, totalLength(areas));
    counters.bytesDone = counters.bytesCopied = resumedFrom;
    const progress = new ProgressReporter(counters, opts.onProgress, opts.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS);
    const ledger = new CopyLedger(
      target,
      log,
      counters,
      firstOrdinal,
      resumedFrom,
      {
        // A checkpoint can only publish what was flushed: frequent checkpoints need frequent flushes.
        flushBytes: opts.flushBytes ?? Math.min(DEFAULT_FLUSH_BYTES, opts.checkpointBytes ?? Infinity),
        flushIntervalMs: opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
        publishIntervalMs: opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
        publishBytes: opts.checkpointBytes,
        onCheckpoint: opts.onCheckpoint,
      },
      (error) => stop.abort(error),
    );
    const reader = new SourceReader(sources, stop.signal, { ...DEFAULT_READ_RETRY, ...opts.readRetry }, opts.reopenSource, counters);
    const planner = new AreaPlanner(ranges, { extents: (o, l) => reader.extents(o, l) }, size, chunkSize, firstIndex);
    // Slot memory from the target when it has a preference (O_DIRECT alignment), so writes and re-reads go direct.
    const allocate = target.allocateIoBuffer?.bind(target);
    const totalChunks = countPlannedChunksBelow(ranges, chunkSize, Math.ceil(size / chunkSize));
    const targetDigests = Buffer.alloc((totalChunks - firstOrdinal) * DIGEST_RECORD_SIZE);
    let firstByteAt: number | undefined;

    let readFailure: SourceReadError | undefined;
    let chunksReadBack = 0;
    try {
      const copying = copyChunks({
        reader,
        target,
        planner,
        ledger,
        counters,
        progress,
        inFlight,
        hasher,
        pool: new BufferPool(chunkSize, allocate),
        freshTarget,
        onFirstByte: () => {
          firstByteAt = Date.now();
          opts.onFirstByte?.();
        },
        stop,
      }).then(async (failure) => {
        readFailure = failure;
        await ledger.endCopy(); // flush what is contiguous; the verification then runs out
      });
      const verifying = verifyChunks({
        target,
        targetMap: isAllocationAware(target) ? { extents: (o, l) => target.extents(o, l) } : undefined,
        ledger,
        hasher,
        pool: new BufferPool(chunkSize, allocate),
        counters,
        progress,
        inFlight: opts.verifyInFlight ?? DEFAULT_VERIFY_IN_FLIGHT,
        chunkSize,
        targetDigests,
        firstOrdinal,
        stop,
      }).then((n) => void (chunksReadBack = n));
      await settleBoth(copying, verifying, stop);
      // Through source faults the attempt still publishes how far it durably and provably got, then fails.
      await ledger.publish();
      progress.tick(true);
      if (readFailure) throw readFailure;
    } catch (error) {
      await ledger.settle().catch(() => undefined);
      // Any failure but the caller's own abort still reports what was proven before it.
      if (!opts.signal?.aborted) await ledger.publish().catch(() => undefined);
      throw error;
    }

    const sourceDigests = await log.read(0, totalChunks);
    const missing = firstMissingRecord(sourceDigests);
    if (missing < totalChunks) throw new Error(`digest log ${log.filePath} lacks the source digest of chunk ${missing} after the copy`);
    const targetAll = Buffer.concat([sourceDigests.subarray(0, firstOrdinal * DIGEST_RECORD_SIZE), targetDigests]);
    const source = blake3(sourceDigests).toString('hex');
    const targetHex = blake3(targetAll).toString('hex');
    return {
      bytesTotal: size,
      areaBytes: counters.areaBytes,
      areas: areas.length,
      bytesRead: counters.bytesRead,
      bytesWritten: counters.bytesWritten,
      bytesZeroed: counters.bytesZeroed,
      bytesZeroSkipped: counters.bytesZeroSkipped,
      bytesReadBack: counters.bytesReadBack,
      readRetries: counters.readRetries,
      reconnects: counters.reconnects,
      resumedFrom,
      durationMs: Date.now() - startedAt,
      firstByteAt,
      verification: {
        algorithm: 'blake3-tree',
        chunkSize,
        leafSize: DIGEST_LEAF_SIZE,
        chunks: totalChunks,
        source,
        target: targetHex,
        match: source === targetHex,
        chunksReadBack,
      },
    };
  } finally {
    opts.signal?.removeEventListener('abort', forwardAbort);
    await release();
    await log.close();
  }
}

/** Both phases run together; the first failure of either stops the other, and both have settled on return. */
async function settleBoth(copying: Promise<void>, verifying: Promise<void>, stop: AbortController): Promise<void> {
  const failFast = (p: Promise<void>) =>
    p.catch((error: unknown) => {
      if (!stop.signal.aborted) stop.abort(error);
      throw error;
    });
  const results = await Promise.allSettled([failFast(copying), failFast(verifying)]);
  // The error that started it wins over the aborts it caused in the other phase.
  if (stop.signal.aborted) throw stop.signal.reason;
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

function checkArguments(sources: BlockSource[], target: BlockTarget, chunkSize: number, inFlight: number): number {
  if (sources.length === 0) throw new Error('a copy needs at least one source connection');
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

/** First chunk to copy: the resume watermark on the grid, lowered if the log lacks digests below it. */
async function resumePoint(
  log: DigestLog,
  ranges: readonly PlannedRange[],
  resumeFrom: number,
  size: number,
  chunkSize: number,
): Promise<{ firstIndex: number; firstOrdinal: number }> {
  if (!Number.isSafeInteger(resumeFrom) || resumeFrom < 0) throw new Error(`resumeFrom must be a non-negative integer, got ${resumeFrom}`);
  const wanted = resumeFrom >= size ? Math.ceil(size / chunkSize) : Math.floor(resumeFrom / chunkSize);
  const ordinal = countPlannedChunksBelow(ranges, chunkSize, wanted);
  const present = ordinal === 0 ? 0 : await log.presentPrefix(ordinal);
  if (present === ordinal) return { firstIndex: wanted, firstOrdinal: ordinal };
  // Start at the first chunk whose digest is missing: the grid index of the present-th planned chunk.
  const planner = new AreaPlanner(ranges, undefined, size, chunkSize, 0);
  for (let i = 0; i < present; i++) await planner.next();
  const chunk = await planner.next();
  return { firstIndex: chunk ? chunk.index : wanted, firstOrdinal: present };
}

/** The areas to copy and the ranges to clear, as one sorted list (they never overlap: zeros lie outside). */
function mergeRanges(areas: readonly ByteArea[], zeros: readonly ByteArea[]): PlannedRange[] {
  const out: PlannedRange[] = [
    ...areas.map((a) => ({ start: a.start, length: a.length, kind: 'copy' as const })),
    ...zeros.map((a) => ({ start: a.start, length: a.length, kind: 'zero' as const })),
  ];
  return out.sort((a, b) => a.start - b.start);
}

/** Names the plan in the digest log: another set of areas (or of ranges to clear) must not reuse its digests. */
function planId(ranges: readonly PlannedRange[], chunkSize: number, size: number): string {
  return blake3(JSON.stringify({ size, chunkSize, ranges: ranges.map((r) => [r.start, r.length, r.kind]) })).toString('hex');
}

/** Ranges outside `areas` where the target may hold data (all of them, if the target cannot tell). */
async function targetDataOutside(target: BlockTarget, areas: readonly ByteArea[], size: number): Promise<ByteArea[]> {
  const outside = complementAreas(areas, size);
  if (!isAllocationAware(target)) return outside;
  const out: ByteArea[] = [];
  for (const range of outside) {
    for (let off = range.start; off < range.start + range.length; ) {
      const extents = await target.extents(off, range.start + range.length - off);
      if (!extents.length) break;
      for (const e of extents) {
        const s = Math.max(e.offset, off);
        const end = Math.min(e.offset + e.length, range.start + range.length);
        if (!e.zero && end > s) out.push({ start: s, length: end - s });
      }
      const last = extents[extents.length - 1];
      if (last.offset + last.length <= off) break;
      off = last.offset + last.length;
    }
  }
  return out;
}

export { complementAreas, normaliseAreas, type ByteArea } from './byte-areas';
