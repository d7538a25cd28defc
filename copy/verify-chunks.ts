/**
 * The verification, running alongside the copy: each chunk, once durable, is read back from the target (where the
 * target can tell it holds no data, a hole reads as zeros by the storage's own guarantee and is not read), digested
 * exactly like the source was, and compared with the source digest. The first chunk that differs fails the copy.
 */
import type { AllocationMap, ChunkPiece, ChunkPlan } from './area-planner';
import type { BlockTarget, Extent } from './block-device';
import type { BufferPool } from './buffer-pool';
import { digestChunk, segmentsOf, zeroChunkDigest } from './chunk-digest';
import type { CopyCounters, ProgressReporter } from './copy-counters';
import type { CopiedChunk, CopyLedger } from './copy-ledger';
import { runLanes } from './lane-pool';
import type { LeafHasher } from './leaf-hasher';
import { VerificationError } from './verification-error';
import { abortable } from './abortable';

export interface VerifyPhase {
  target: BlockTarget;
  /** undefined: the target cannot tell where it holds no data; everything covered is read back. */
  targetMap: AllocationMap | undefined;
  ledger: CopyLedger;
  hasher: LeafHasher;
  pool: BufferPool;
  counters: CopyCounters;
  progress: ProgressReporter;
  inFlight: number;
  chunkSize: number;
  /** Target digest of each chunk read back, at (ordinal - firstOrdinal) * 32. */
  targetDigests: Buffer;
  firstOrdinal: number;
  stop: AbortController;
}

export async function verifyChunks(phase: VerifyPhase): Promise<number> {
  const { target, counters, stop } = phase;
  const map = new FlushedTargetMap(phase.targetMap, phase.ledger);
  let readBack = 0;
  const mismatches: VerificationError[] = [];

  const verify = async ({ plan, digest: expected, pieces }: CopiedChunk & { pieces: ChunkPiece[] }): Promise<void> => {
    const segments = segmentsOf(pieces);
    const hasData = pieces.some((p) => p.kind === 'data');
    const slot = hasData ? phase.pool.acquire() : Buffer.alloc(0);
    await Promise.all(
      pieces
        .filter((p) => p.kind === 'data')
        .map(async (p) => {
          const dest = slot.subarray(p.offset - plan.offset, p.offset - plan.offset + p.length);
          if (target.readInto) await abortable(target.readInto(p.offset, dest), stop.signal);
          else {
            const data = await abortable(target.read(p.offset, p.length), stop.signal);
            // A short read would otherwise count as trailing zeros and could "match".
            if (data.length !== p.length) throw new Error(`short read from target at offset ${p.offset}: ${data.length} of ${p.length} bytes`);
            data.copy(dest);
          }
          counters.bytesReadBack += p.length;
        }),
    );
    stop.signal.throwIfAborted();
    const { digest } = await digestChunk(phase.hasher, slot, plan.offset, pieces, segments);
    if (hasData) phase.pool.release(slot); // not on failure: an abandoned read might still land in it
    check(plan, expected, digest);
  };

  const check = (plan: ChunkPlan, expected: Buffer, digest: Buffer): void => {
    digest.copy(phase.targetDigests, (plan.ordinal - phase.firstOrdinal) * 32);
    if (!digest.equals(expected)) {
      // Finish the chunks being read back, then report the lowest that differs (not whichever lane lost first).
      mismatches.push(new VerificationError(plan.offset, phase.chunkSize, { algorithm: 'blake3-tree', source: expected.toString('hex'), target: digest.toString('hex'), match: false }));
      return;
    }
    readBack++;
    phase.ledger.verified(plan.ordinal);
    phase.progress.tick();
  };

  await runLanes(
    phase.inFlight,
    async () => {
      for (;;) {
        if (mismatches.length > 0) return undefined;
        const chunk = await phase.ledger.nextToRead(stop.signal);
        if (!chunk) return undefined;
        // The target's map is asked here, in chunk order, and only about flushed chunks.
        // A chunk written in full is read back in full; only where the copy skipped bytes can the map spare reads.
        const pieces = chunk.skippedSome
          ? await map.split(chunk.plan.pieces, chunk.plan.offset, chunk.plan.end)
          : chunk.plan.pieces.map((p) => ({ offset: p.offset, length: p.length, kind: 'data' as const }));
        // Nothing to read back (the target holds a hole there): settled here, without a trip through a lane.
        if (pieces.some((p) => p.kind === 'data')) return { ...chunk, pieces };
        check(chunk.plan, chunk.digest, zeroChunkDigest(segmentsOf(pieces)));
      }
    },
    verify,
    stop,
  );
  if (mismatches.length > 0) throw mismatches.sort((a, b) => a.firstMismatchOffset - b.firstMismatchOffset)[0];
  return readBack;
}

/**
 * Reads back the small holes between data too: one read over data–hole–data costs less than two (a hole reads as
 * zeros without I/O on a local file system), and a scattered sparse disk would otherwise cost a request per extent.
 */
export const BRIDGED_HOLE_BYTES = 256 * 1024;

function bridgeSmallHoles(pieces: ChunkPiece[]): ChunkPiece[] {
  const out: ChunkPiece[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    const prev = out[out.length - 1];
    const next = pieces[i + 1];
    const bridge = piece.kind === 'zero' && piece.length <= BRIDGED_HOLE_BYTES && prev?.kind === 'data' && next?.kind === 'data';
    const kind = bridge ? 'data' : piece.kind;
    if (prev && prev.kind === kind && prev.offset + prev.length === piece.offset) prev.length += piece.length;
    else out.push({ ...piece, kind });
  }
  return out;
}

/** The target's allocation over flushed chunks, fetched in order in batches up to what is flushed. */
class FlushedTargetMap {
  private extents: Extent[] = [];
  private head = 0;
  /** extents cover [mappedFrom, mappedUpTo) without gaps. */
  private mappedFrom = 0;
  private mappedUpTo = 0;

  constructor(
    private readonly map: AllocationMap | undefined,
    private readonly ledger: CopyLedger,
  ) {}

  /** The covered pieces cut by the target's map: data (read it back) or zero (a hole of the target). */
  async split(pieces: readonly ChunkPiece[], chunkOffset: number, chunkEnd: number): Promise<ChunkPiece[]> {
    const covered = pieces.map((p) => ({ offset: p.offset, length: p.length, kind: 'data' as const }));
    if (!this.map) return covered;
    if (chunkOffset < this.mappedFrom || chunkEnd > this.mappedUpTo) await this.fetch(chunkOffset, Math.max(chunkEnd, this.ledger.flushedEnd));
    const out: ChunkPiece[] = [];
    for (const piece of covered) {
      const end = piece.offset + piece.length;
      for (let i = this.head; i < this.extents.length; i++) {
        const e = this.extents[i];
        if (e.offset >= end) break;
        const s = Math.max(e.offset, piece.offset);
        const t = Math.min(e.offset + e.length, end);
        if (t <= s) continue;
        const kind = e.zero ? 'zero' : 'data';
        const last = out[out.length - 1];
        if (last && last.kind === kind && last.offset + last.length === s) last.length += t - s;
        else out.push({ offset: s, length: t - s, kind });
      }
    }
    while (this.head < this.extents.length && this.extents[this.head].offset + this.extents[this.head].length <= chunkEnd) this.head++;
    return bridgeSmallHoles(out);
  }

  private async fetch(from: number, to: number): Promise<void> {
    const map = this.map as AllocationMap;
    this.extents = [];
    this.head = 0;
    let at = from;
    while (at < to) {
      const answer = await map.extents(at, to - at);
      let next = at;
      for (const e of answer) {
        const s = Math.max(e.offset, next);
        const t = Math.min(e.offset + e.length, to);
        if (t <= s) continue;
        if (s !== next) throw new Error(`target allocation map has a gap at ${next} (next extent at ${e.offset})`);
        this.extents.push({ offset: s, length: t - s, zero: e.zero });
        next = t;
      }
      if (next === at) throw new Error(`target allocation map returned nothing for offset ${at}`);
      at = next;
    }
    this.mappedFrom = from;
    this.mappedUpTo = to;
  }
}
