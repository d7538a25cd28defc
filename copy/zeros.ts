/** Shared zero bytes and the fast all-zero check. */
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
