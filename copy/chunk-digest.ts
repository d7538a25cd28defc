/**
 * The chunk digest both sides of the verification compute (format `blake3-tree`): the bytes a chunk covers are cut
 * at every DIGEST_LEAF_SIZE boundary of the disk into segments; a chunk's digest is BLAKE3 over the BLAKE3 of each
 * segment, in disk order. It depends only on the covered bytes, not on how allocation maps cut them up, and a
 * segment that is a hole or reads as zeros costs a lookup instead of a hash, so sparse chunks stay cheap.
 *
 * BLAKE3 rather than SHA-256: it is a cryptographic hash too (a wrong offset, a lost write or a flipped bit cannot
 * collide by accident or on purpose), and it runs about four times faster per core here (~7 GB/s against ~1.8).
 */
import { blake3 } from '@napi-rs/blake-hash';
import { DIGEST_LEAF_SIZE } from './copy-options';
import type { LeafHasher, Slices } from './leaf-hasher';
import { zeroBytes } from './zeros';

export interface CoveredPiece {
  offset: number;
  length: number;
  kind: 'data' | 'zero';
}

/** Absolute [start, end) of one segment; `data`: some of it is in a data piece (else it is known zeros). */
export interface Segment {
  start: number;
  end: number;
  data: boolean;
}

/** The segments of sorted, non-overlapping pieces. */
export function segmentsOf(pieces: readonly CoveredPiece[]): Segment[] {
  const out: Segment[] = [];
  for (const piece of pieces) {
    const pieceEnd = piece.offset + piece.length;
    for (let at = piece.offset; at < pieceEnd; ) {
      const leafEnd = Math.min((Math.floor(at / DIGEST_LEAF_SIZE) + 1) * DIGEST_LEAF_SIZE, pieceEnd);
      const last = out[out.length - 1];
      // Adjacent pieces in one leaf form one segment: the digest must not depend on where the map cut them.
      if (last && last.end === at && Math.floor(last.start / DIGEST_LEAF_SIZE) === Math.floor(at / DIGEST_LEAF_SIZE)) {
        last.end = leafEnd;
        last.data ||= piece.kind === 'data';
      } else {
        out.push({ start: at, end: leafEnd, data: piece.kind === 'data' });
      }
      at = leafEnd;
    }
  }
  return out;
}

export interface DigestedChunk {
  digest: Buffer;
  /** Per segment: all zeros. */
  zero: boolean[];
}

/**
 * Digest of a chunk whose data pieces are in `slot` at their offset minus `slotOffset`. The zero pieces that share
 * a leaf with data are zero-filled in the slot first (the slot is reused, so it may hold an earlier chunk's bytes).
 */
export async function digestChunk(
  hasher: LeafHasher,
  slot: Buffer,
  slotOffset: number,
  pieces: readonly CoveredPiece[],
  segments: readonly Segment[],
): Promise<DigestedChunk> {
  let s = 0;
  for (const piece of pieces) {
    if (piece.kind !== 'zero') continue;
    const pieceEnd = piece.offset + piece.length;
    while (s < segments.length && segments[s].end <= piece.offset) s++;
    for (let i = s; i < segments.length && segments[i].start < pieceEnd; i++) {
      if (!segments[i].data) continue;
      const from = Math.max(segments[i].start, piece.offset);
      const to = Math.min(segments[i].end, pieceEnd);
      slot.fill(0, from - slotOffset, to - slotOffset);
    }
  }
  if (!segments.some((seg) => seg.data)) return { digest: zeroChunkDigest(segments), zero: segments.map(() => true) };
  const dataIndexes: number[] = [];
  const slices: Array<readonly [number, number]> = [];
  segments.forEach((seg, i) => {
    if (!seg.data) return;
    dataIndexes.push(i);
    slices.push([seg.start - slotOffset, seg.end - slotOffset]);
  });
  const digests: Buffer[] = segments.map((seg) => zeroSegmentDigest(seg.end - seg.start));
  const zero = segments.map(() => true);
  if (slices.length > 0) {
    const hashed = await hasher.hash(slot, slices as Slices, true);
    dataIndexes.forEach((segment, i) => {
      const digest = hashed.digests[i];
      if (digest) {
        digests[segment] = digest;
        zero[segment] = false;
      }
    });
  }
  return { digest: blake3(Buffer.concat(digests)), zero };
}

/** The same digest from the chunk's bytes laid out in one buffer (tests, and chunks known to be all zeros). */
export function chunkDigestOfBytes(bytes: Buffer, bytesOffset: number, pieces: readonly CoveredPiece[]): Buffer {
  const digests = segmentsOf(pieces).map((seg) => {
    const part = bytes.subarray(seg.start - bytesOffset, seg.end - bytesOffset);
    return part.equals(zeroBytes(part.length)) ? zeroSegmentDigest(part.length) : blake3(part);
  });
  return blake3(Buffer.concat(digests));
}

const zeroChunkDigests = new Map<string, Buffer>();

/**
 * Digest of a chunk whose covered bytes are all known zeros, cached by the lengths of its segments: a sparse disk
 * is mostly such chunks, and they all have one of a few shapes (typically: the whole chunk).
 */
export function zeroChunkDigest(segments: readonly Segment[]): Buffer {
  const key = segments.map((seg) => seg.end - seg.start).join(',');
  let digest = zeroChunkDigests.get(key);
  if (!digest) {
    digest = blake3(Buffer.concat(segments.map((seg) => zeroSegmentDigest(seg.end - seg.start))));
    if (zeroChunkDigests.size > 1024) zeroChunkDigests.clear();
    zeroChunkDigests.set(key, digest);
  }
  return digest;
}

const zeroDigests = new Map<number, Buffer>();

/** BLAKE3 of `length` zero bytes, computed once per length. */
export function zeroSegmentDigest(length: number): Buffer {
  let digest = zeroDigests.get(length);
  if (!digest) {
    digest = blake3(zeroBytes(length));
    zeroDigests.set(length, digest);
  }
  return digest;
}
