/** An independent re-implementation of the documented chunk digest (blake3-tree), to pin the format down. */
import { blake3 } from '@napi-rs/blake-hash';

/** Chunk digests of a whole-disk copy: every chunk covers its bytes in full, cut into 64 KiB leaves. */
export function referenceChunkDigests(content: Buffer, chunkSize: number, leafSize = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let c = 0; c < content.length; c += chunkSize) {
    const chunk = content.subarray(c, Math.min(c + chunkSize, content.length));
    const leaves: Buffer[] = [];
    for (let l = 0; l < chunk.length; l += leafSize) leaves.push(blake3(chunk.subarray(l, l + leafSize)));
    out.push(blake3(Buffer.concat(leaves)));
  }
  return out;
}

export function referenceDiskDigest(content: Buffer, chunkSize: number): string {
  return blake3(Buffer.concat(referenceChunkDigests(content, chunkSize))).toString('hex');
}
