/**
 * The verify phase: read the target back on the same chunk grid, digest it exactly like the source was digested,
 * and compare chunk by chunk against the source digests in the log (which may come from earlier attempts).
 */
import { createHash } from 'node:crypto';
import { abortable } from './abortable';
import type { BlockTarget } from './block-device';
import type { BufferPool } from './buffer-pool';
import { digestChunk, zeroChunkDigest, type DataPiece } from './chunk-digest';
import { ChunkPlanner, type AllocationMap, type ChunkPlan } from './chunk-planner';
import type { CopyCounters, ProgressReporter } from './copy-counters';
import { DIGEST_LEAF_SIZE, type VerificationResult } from './copy-options';
import { DIGEST_RECORD_SIZE, type DigestLog } from './digest-log';
import type { LeafHasher } from './leaf-hasher';
import { runLanes } from './lane-pool';

export interface VerifyPhase {
  target: BlockTarget;
  targetMap: AllocationMap;
  log: DigestLog;
  size: number;
  chunkSize: number;
  inFlight: number;
  hasher: LeafHasher;
  /** chunkSize slots, as in the copy phase. */
  pool: BufferPool;
  counters: CopyCounters;
  progress: ProgressReporter;
  stop: AbortController;
}

export interface VerifyOutcome {
  verification: VerificationResult;
  /** Offset of the first chunk whose digests differ, when any. */
  firstMismatchOffset?: number;
}

export async function verifyTarget(phase: VerifyPhase): Promise<VerifyOutcome> {
  const { target, size, chunkSize, counters, stop } = phase;
  const chunkCount = Math.ceil(size / chunkSize);
  const present = await phase.log.presentPrefix(chunkCount);
  if (present < chunkCount) {
    throw new Error(`digest log ${phase.log.filePath} lacks the source digest of chunk ${present} at verification time`);
  }
  const sourceDigests = await phase.log.read(0, chunkCount);
  const targetDigests = Buffer.alloc(chunkCount * DIGEST_RECORD_SIZE);

  const digestTargetChunk = async (plan: ChunkPlan): Promise<void> => {
    let digest = zeroChunkDigest(plan.length);
    if (plan.dataRanges.length > 0) {
      const slot = phase.pool.acquire();
      const pieces: DataPiece[] = await Promise.all(
        plan.dataRanges.map(async (r) => {
          let data: Buffer;
          if (target.readInto) {
            data = slot.subarray(r.offset - plan.offset, r.offset - plan.offset + r.length);
            await abortable(target.readInto(r.offset, data), stop.signal);
          } else {
            data = await abortable(target.read(r.offset, r.length), stop.signal);
          }
          // A short read would otherwise count as trailing zeros and could "match".
          if (data.length !== r.length) throw new Error(`short read from target at offset ${r.offset}: ${data.length} of ${r.length} bytes`);
          return { offset: r.offset, data };
        }),
      );
      digest = (await digestChunk(phase.hasher, plan.offset, plan.length, pieces, false)).digest;
      phase.pool.release(slot); // not on failure: an abandoned read might still land in it
    }
    digest.copy(targetDigests, plan.index * DIGEST_RECORD_SIZE);
    counters.bytesVerified += plan.length;
    phase.progress.tick();
  };
  const planner = new ChunkPlanner(phase.targetMap, size, chunkSize, 0);
  await runLanes(phase.inFlight, () => planner.next(), digestTargetChunk, stop);

  let firstMismatchOffset: number | undefined;
  for (let i = 0; i < chunkCount && firstMismatchOffset === undefined; i++) {
    const at = i * DIGEST_RECORD_SIZE;
    if (sourceDigests.compare(targetDigests, at, at + DIGEST_RECORD_SIZE, at, at + DIGEST_RECORD_SIZE) !== 0) {
      firstMismatchOffset = i * chunkSize;
    }
  }
  const source = createHash('sha256').update(sourceDigests).digest('hex');
  const targetHex = createHash('sha256').update(targetDigests).digest('hex');
  return {
    verification: {
      algorithm: 'sha256-chunked',
      chunkSize,
      leafSize: DIGEST_LEAF_SIZE,
      source,
      target: targetHex,
      match: firstMismatchOffset === undefined && source === targetHex,
    },
    firstMismatchOffset,
  };
}
