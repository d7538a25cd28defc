/**
 * copyAreas: copy given byte areas of a disk (Changed Block Tracking's answer) from a source to the same offsets of
 * a target, resumably, and verify what it wrote by reading it back.
 *
 * Used by warm migration's syncs: a full sync copies the `*` (allocated) areas, an incremental sync the areas changed
 * since the last change id. A full *re*sync onto a volume that already holds data also zeroes what lies outside
 * the areas where the target holds data (`zeroOutside`), so nothing stale survives a CBT reset.
 *
 * Invariant a crash can rely on: every piece below the last published checkpoint (`bytesDone`, a disk offset) is
 * durable in the target. A retry with the same areas and `resumeFrom` = that offset skips those pieces.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { isAllocationAware } from './allocation-aware-target';
import type { BlockSource, BlockTarget } from './block-device';
import { runLanes } from './lane-pool';
import { VerificationError } from './verification-error';
import { zeroBytes, zeroSha256 } from './zeros';

export interface ByteArea {
  start: number;
  length: number;
}

export interface AreaCheckpoint {
  /** Disk offset below which every piece is durable in the target. */
  bytesDone: number;
  /** Sum of the areas' lengths (what a complete sync reads). */
  areaBytes: number;
  /** This attempt only. */
  bytesRead: number;
  bytesWritten: number;
}

export interface AreaCopyOptions {
  /** Largest single read/write (default 2 MiB). */
  pieceSize?: number;
  /** Pieces in flight, spread round-robin over the sources (default 8). */
  inFlight?: number;
  /** A previous attempt's checkpoint offset; pieces ending at or below it are not copied again. */
  resumeFrom?: number;
  /** Also write zeros where the target holds data outside the areas (full resync onto a used volume). */
  zeroOutside?: boolean;
  checkpointIntervalMs?: number;
  /** Awaited; called after target flush. */
  onCheckpoint?: (c: AreaCheckpoint) => void | Promise<void>;
  /** Cheap, throttled, never awaited. */
  onProgress?: (c: AreaCheckpoint) => void;
  /** Called once, when the first source byte of this attempt has arrived (cutover-overhead measurements). */
  onFirstByte?: () => void;
  signal?: AbortSignal;
}

export interface AreaCopyResult {
  areaBytes: number;
  areas: number;
  /** Source bytes read by this attempt. */
  bytesRead: number;
  /** Target bytes written by this attempt (copied plus zeroed). */
  bytesWritten: number;
  /** Of bytesWritten, zeros written outside the areas. */
  bytesZeroed: number;
  resumedFrom: number;
  durationMs: number;
  /** When the first source byte arrived (epoch ms), if any was read. */
  firstByteAt?: number;
  verification: { algorithm: 'sha256-pieces'; pieces: number; source: string; target: string; match: boolean };
}

interface Piece {
  offset: number;
  length: number;
  kind: 'copy' | 'zero';
  done: boolean;
  sourceDigest?: Buffer;
}

const DEFAULT_PIECE = 2 * 1024 * 1024;

/** Sorted, merged, checked areas: overlapping or out-of-disk input is a caller bug worth failing loudly on. */
export function normaliseAreas(areas: ByteArea[], size: number): ByteArea[] {
  const sorted = [...areas].filter((a) => a.length > 0).sort((a, b) => a.start - b.start);
  const out: ByteArea[] = [];
  for (const a of sorted) {
    if (!Number.isSafeInteger(a.start) || !Number.isSafeInteger(a.length) || a.start < 0 || a.start + a.length > size) {
      throw new RangeError(`area [${a.start}, ${a.start + a.length}) is outside the disk (size ${size})`);
    }
    const last = out[out.length - 1];
    if (last && a.start <= last.start + last.length) last.length = Math.max(last.length, a.start + a.length - last.start);
    else out.push({ ...a });
  }
  return out;
}

/** [0, size) minus the areas. */
export function complementAreas(areas: ByteArea[], size: number): ByteArea[] {
  const out: ByteArea[] = [];
  let at = 0;
  for (const a of areas) {
    if (a.start > at) out.push({ start: at, length: a.start - at });
    at = a.start + a.length;
  }
  if (at < size) out.push({ start: at, length: size - at });
  return out;
}

export async function copyAreas(sources: BlockSource[], target: BlockTarget, areas: ByteArea[], opts: AreaCopyOptions = {}): Promise<AreaCopyResult> {
  const startedAt = Date.now();
  if (sources.length === 0) throw new Error('copyAreas needs at least one source connection');
  const size = sources[0].size;
  if (target.size < size) throw new Error(`target (${target.size} bytes) is smaller than the source (${size} bytes)`);
  const pieceSize = opts.pieceSize ?? DEFAULT_PIECE;
  const resumeFrom = opts.resumeFrom ?? 0;
  const merged = normaliseAreas(areas, size);
  const areaBytes = merged.reduce((s, a) => s + a.length, 0);

  const zeroRanges = opts.zeroOutside ? await targetDataOutside(target, merged, size) : [];
  const pieces = [...split(merged, pieceSize, 'copy'), ...split(zeroRanges, pieceSize, 'zero')]
    .sort((a, b) => a.offset - b.offset)
    .filter((p) => p.offset + p.length > resumeFrom);

  const stop = new AbortController();
  setMaxListeners(64, stop.signal);
  const forwardAbort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', forwardAbort, { once: true });
  if (opts.signal?.aborted) forwardAbort();

  const counters = { bytesRead: 0, bytesWritten: 0, bytesZeroed: 0 };
  let firstByteAt: number | undefined;
  let next = 0;
  let lane = 0;
  // Pieces complete out of order; the watermark is the first piece not yet done.
  let doneUpTo = 0;
  const watermark = () => {
    while (doneUpTo < pieces.length && pieces[doneUpTo].done) doneUpTo++;
    return doneUpTo < pieces.length ? pieces[doneUpTo].offset : size;
  };
  const snapshot = (): AreaCheckpoint => ({ bytesDone: Math.max(resumeFrom, watermark()), areaBytes, bytesRead: counters.bytesRead, bytesWritten: counters.bytesWritten });

  let lastCheckpoint = Date.now();
  let checkpointing: Promise<void> | undefined;
  let lastProgress = 0;
  const checkpoint = async () => {
    const c = snapshot();
    await target.flush();
    await opts.onCheckpoint?.(c);
  };
  const maybeCheckpoint = () => {
    const now = Date.now();
    if (opts.onProgress && now - lastProgress >= 100) {
      lastProgress = now;
      opts.onProgress(snapshot());
    }
    if (checkpointing || now - lastCheckpoint < (opts.checkpointIntervalMs ?? 2000)) return;
    lastCheckpoint = now;
    checkpointing = checkpoint()
      .catch((err) => stop.abort(err))
      .finally(() => (checkpointing = undefined));
  };

  try {
    await runLanes(
      Math.max(1, opts.inFlight ?? 8),
      async () => (next < pieces.length ? pieces[next++] : undefined),
      async (piece) => {
        if (piece.kind === 'zero') {
          await target.write(piece.offset, zeroBytes(piece.length));
          counters.bytesWritten += piece.length;
          counters.bytesZeroed += piece.length;
          piece.sourceDigest = zeroSha256(piece.length);
        } else {
          const source = sources[lane++ % sources.length];
          const data = await source.read(piece.offset, piece.length, stop.signal);
          if (firstByteAt === undefined) {
            firstByteAt = Date.now();
            opts.onFirstByte?.();
          }
          counters.bytesRead += piece.length;
          piece.sourceDigest = createHash('sha256').update(data).digest();
          await target.write(piece.offset, data);
          counters.bytesWritten += piece.length;
        }
        piece.done = true;
        maybeCheckpoint();
      },
      stop,
    );
    await checkpointing;
    await checkpoint(); // final flush: everything durable before verification reads it back
  } finally {
    opts.signal?.removeEventListener('abort', forwardAbort);
    await checkpointing?.catch(() => undefined);
  }

  // Read back what this attempt wrote and compare digests piece by piece.
  const sourceSum = createHash('sha256');
  const targetSum = createHash('sha256');
  for (const piece of pieces) {
    opts.signal?.throwIfAborted();
    const back = createHash('sha256').update(await target.read(piece.offset, piece.length)).digest();
    sourceSum.update(piece.sourceDigest!);
    targetSum.update(back);
    if (!back.equals(piece.sourceDigest!)) {
      const verification = { algorithm: 'sha256-pieces', source: piece.sourceDigest!.toString('hex'), target: back.toString('hex'), match: false };
      throw new VerificationError(piece.offset, piece.length, verification);
    }
  }
  const verification = { algorithm: 'sha256-pieces' as const, pieces: pieces.length, source: sourceSum.digest('hex'), target: targetSum.digest('hex'), match: true };
  return {
    areaBytes,
    areas: merged.length,
    bytesRead: counters.bytesRead,
    bytesWritten: counters.bytesWritten,
    bytesZeroed: counters.bytesZeroed,
    resumedFrom: pieces.length ? Math.min(pieces[0].offset, Math.max(resumeFrom, 0)) : resumeFrom,
    durationMs: Date.now() - startedAt,
    firstByteAt,
    verification,
  };
}

function split(ranges: ByteArea[], pieceSize: number, kind: Piece['kind']): Piece[] {
  const out: Piece[] = [];
  for (const r of ranges) {
    for (let off = r.start; off < r.start + r.length; off += pieceSize) {
      out.push({ offset: off, length: Math.min(pieceSize, r.start + r.length - off), kind, done: false });
    }
  }
  return out;
}

/** Ranges outside `areas` where the target may hold data (all of them, if the target cannot tell). */
async function targetDataOutside(target: BlockTarget, areas: ByteArea[], size: number): Promise<ByteArea[]> {
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
