/** An independent re-implementation of the documented chunk digest, to pin the format down. */
import { createHash } from 'node:crypto';

export function referenceChunkDigests(content: Buffer, chunkSize: number, leafSize = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let c = 0; c < content.length; c += chunkSize) {
    const chunk = content.subarray(c, Math.min(c + chunkSize, content.length));
    const tree = createHash('sha256');
    for (let l = 0; l < chunk.length; l += leafSize) tree.update(createHash('sha256').update(chunk.subarray(l, l + leafSize)).digest());
    out.push(tree.digest());
  }
  return out;
}

export function referenceDiskDigest(content: Buffer, chunkSize: number): string {
  return createHash('sha256').update(Buffer.concat(referenceChunkDigests(content, chunkSize))).digest('hex');
}
