/** Shared zero bytes: the fast all-zero check and the cached digests of zero runs. */
import { createHash } from 'node:crypto';

let zeroBuffer = Buffer.alloc(0);

/** A read-only view of `length` zero bytes (grown on demand, never written to). */
export function zeroBytes(length: number): Buffer {
  if (zeroBuffer.length < length) zeroBuffer = Buffer.alloc(Math.max(length, 2 * zeroBuffer.length));
  return zeroBuffer.subarray(0, length);
}

/** memcmp against zeros: far cheaper than hashing or writing the range. */
export function isAllZero(data: Buffer): boolean {
  return data.equals(zeroBytes(data.length));
}

const zeroDigests = new Map<number, Buffer>();

/** sha256 of `length` zero bytes, computed once per length. */
export function zeroSha256(length: number): Buffer {
  let digest = zeroDigests.get(length);
  if (!digest) {
    digest = createHash('sha256').update(zeroBytes(length)).digest();
    zeroDigests.set(length, digest);
  }
  return digest;
}
