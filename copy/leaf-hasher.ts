/**
 * The one expensive primitive of the digest: BLAKE3 of whole segments. Kept this small so it can run on worker
 * threads (the copy's main thread is busy with sockets and writes) while the digest format itself stays in
 * chunk-digest.ts.
 */
import { blake3 } from '@napi-rs/blake-hash';
import { isAllZero } from './zeros';

/** [start, end) byte ranges within one buffer. */
export type Slices = ReadonlyArray<readonly [number, number]>;

export interface LeafHashes {
  /** The same bytes; a different Buffer object when they travelled to a worker and back. */
  data: Buffer;
  /** Per slice: its BLAKE3, or undefined when the slice is all zeros (the caller uses the cached zero digest). */
  digests: Array<Buffer | undefined>;
}

export interface LeafHasher {
  /** `keepData: false` lets an implementation consume the buffer (no need to hand it back). */
  hash(data: Buffer, slices: Slices, keepData: boolean): Promise<LeafHashes>;
  close(): Promise<void>;
}

/** Hashes on the calling thread. */
export class InlineLeafHasher implements LeafHasher {
  async hash(data: Buffer, slices: Slices): Promise<LeafHashes> {
    return hashLeavesSync(data, slices);
  }

  async close(): Promise<void> {}
}

export function hashLeavesSync(data: Buffer, slices: Slices): LeafHashes {
  const digests = slices.map(([start, end]) => {
    const leaf = data.subarray(start, end);
    return isAllZero(leaf) ? undefined : blake3(leaf);
  });
  return { data, digests };
}
