/**
 * The per-chunk digest both sides of the verification compute: sha256 over the sha256 of each DIGEST_LEAF_SIZE leaf
 * (the chunk's last leaf may be short). It depends only on the chunk's bytes, not on how extents cut it up, and a
 * leaf that is a hole or reads as zeros costs a lookup instead of a hash, so sparse chunks stay cheap.
 */
import { createHash } from 'node:crypto';
import { DIGEST_LEAF_SIZE } from './copy-options';
import { hashLeavesSync, type LeafHasher, type Slices } from './leaf-hasher';
import { zeroBytes, zeroSha256 } from './zeros';

/** Bytes known at `offset`; everything in the chunk not covered by a piece is zero. */
export interface DataPiece {
  offset: number;
  data: Buffer;
}

export interface DigestedChunk {
  digest: Buffer;
  /** The pieces again (their Buffers may be new objects after a trip to a worker), each flagged if all zeros. */
  pieces: Array<DataPiece & { allZero: boolean }>;
}

/**
 * `pieces` must be sorted, non-overlapping and inside [chunkOffset, chunkOffset + chunkLength). With `keepData`
 * false the pieces' buffers may be consumed (verification does not need them afterwards).
 */
export async function digestChunk(
  hasher: LeafHasher,
  chunkOffset: number,
  chunkLength: number,
  pieces: readonly DataPiece[],
  keepData = true,
): Promise<DigestedChunk> {
  const chunkEnd = chunkOffset + chunkLength;
  // Everything that reads the pieces on this thread happens before they are handed to the hasher, which may
  // move (detach) their buffers: holes and partly covered leaves are settled here, whole leaves go to the hasher.
  const leafDigests: Array<Buffer | undefined> = [];
  let first = 0;
  for (let leaf = chunkOffset; leaf < chunkEnd; leaf += DIGEST_LEAF_SIZE) {
    const leafEnd = Math.min(leaf + DIGEST_LEAF_SIZE, chunkEnd);
    while (first < pieces.length && pieces[first].offset + pieces[first].data.length <= leaf) first++;
    const piece = pieces[first];
    const inside = piece && piece.offset <= leaf && piece.offset + piece.data.length >= leafEnd;
    leafDigests.push(inside ? undefined : partialLeafDigest(leaf, leafEnd, pieces, first));
  }
  const leafIndex = (offset: number) => (offset - chunkOffset) / DIGEST_LEAF_SIZE;
  const hashed = await Promise.all(
    pieces.map(async (piece) => {
      const leaves = wholeLeavesIn(piece, chunkOffset, chunkEnd);
      const slices: Slices = leaves.map((leaf) => [leaf.start - piece.offset, leaf.end - piece.offset]);
      const { offset } = piece;
      const result = await hasher.hash(piece.data, slices, keepData);
      leaves.forEach((leaf, i) => {
        leafDigests[leafIndex(leaf.start)] = result.digests[i] ?? zeroSha256(leaf.end - leaf.start);
      });
      return { offset, data: result.data, allZero: result.allZero };
    }),
  );
  const tree = createHash('sha256');
  for (const digest of leafDigests) tree.update(digest as Buffer);
  return { digest: tree.digest(), pieces: hashed };
}

/** The same digest computed synchronously on this thread (tests, cached zero chunks). */
export function chunkDigestSync(chunkOffset: number, chunkLength: number, pieces: readonly DataPiece[]): Buffer {
  const chunkEnd = chunkOffset + chunkLength;
  const tree = createHash('sha256');
  let first = 0;
  for (let leaf = chunkOffset; leaf < chunkEnd; leaf += DIGEST_LEAF_SIZE) {
    const leafEnd = Math.min(leaf + DIGEST_LEAF_SIZE, chunkEnd);
    while (first < pieces.length && pieces[first].offset + pieces[first].data.length <= leaf) first++;
    const piece = pieces[first];
    if (piece && piece.offset <= leaf && piece.offset + piece.data.length >= leafEnd) {
      const digest = hashLeavesSync(piece.data, [[leaf - piece.offset, leafEnd - piece.offset]]).digests[0];
      tree.update(digest ?? zeroSha256(leafEnd - leaf));
    } else {
      tree.update(partialLeafDigest(leaf, leafEnd, pieces, first));
    }
  }
  return tree.digest();
}

/** Digest of a chunk that is entirely zero, cached per length. */
const zeroChunkDigests = new Map<number, Buffer>();
export function zeroChunkDigest(chunkLength: number): Buffer {
  let digest = zeroChunkDigests.get(chunkLength);
  if (!digest) {
    digest = chunkDigestSync(0, chunkLength, []);
    zeroChunkDigests.set(chunkLength, digest);
  }
  return digest;
}

/** Leaves of the chunk's grid lying entirely inside `piece`. */
function wholeLeavesIn(piece: DataPiece, chunkOffset: number, chunkEnd: number): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  const pieceEnd = piece.offset + piece.data.length;
  const firstLeaf = chunkOffset + Math.ceil((piece.offset - chunkOffset) / DIGEST_LEAF_SIZE) * DIGEST_LEAF_SIZE;
  for (let start = firstLeaf; start < pieceEnd; start += DIGEST_LEAF_SIZE) {
    const end = Math.min(start + DIGEST_LEAF_SIZE, chunkEnd);
    if (end > pieceEnd) break;
    out.push({ start, end });
  }
  return out;
}

/** A leaf that is a hole or only partly covered: hash its bytes in order, zeros for the gaps. */
function partialLeafDigest(leaf: number, leafEnd: number, pieces: readonly DataPiece[], first: number): Buffer {
  const piece = pieces[first];
  if (!piece || piece.offset >= leafEnd) return zeroSha256(leafEnd - leaf);
  const hash = createHash('sha256');
  let at = leaf;
  for (let i = first; i < pieces.length && pieces[i].offset < leafEnd; i++) {
    const start = Math.max(pieces[i].offset, leaf);
    const end = Math.min(pieces[i].offset + pieces[i].data.length, leafEnd);
    if (start > at) hash.update(zeroBytes(start - at));
    hash.update(pieces[i].data.subarray(start - pieces[i].offset, end - pieces[i].offset));
    at = end;
  }
  if (at < leafEnd) hash.update(zeroBytes(leafEnd - at));
  return hash.digest();
}
