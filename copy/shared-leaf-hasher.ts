/**
 * One pool of digest threads per process, shared by every copy running in it: eight disks copied at once use the
 * same two threads instead of sixteen (each thread is a V8 isolate, ~10 MB). The pool starts with the first copy
 * and stops when the last one releases it.
 */
import { availableParallelism } from 'node:os';
import { InlineLeafHasher, type LeafHasher } from './leaf-hasher';
import { WorkerLeafHasher } from './worker-leaf-hasher';

let shared: { hasher: WorkerLeafHasher; threads: number; users: number } | undefined;

export const DEFAULT_HASH_THREADS = Math.max(1, Math.min(2, availableParallelism()));

/** A hasher with `threads` worker threads (0: on the calling thread); `release` when done with it. */
export function acquireLeafHasher(threads = DEFAULT_HASH_THREADS): { hasher: LeafHasher; release: () => Promise<void> } {
  if (threads <= 0) return { hasher: new InlineLeafHasher(), release: async () => undefined };
  if (shared && shared.threads !== threads) {
    // A copy asked for another size: give it its own pool rather than resize one others are using.
    const own = new WorkerLeafHasher(threads);
    return { hasher: own, release: () => own.close() };
  }
  shared ??= { hasher: new WorkerLeafHasher(threads), threads, users: 0 };
  const pool = shared;
  pool.users++;
  let released = false;
  return {
    hasher: pool.hasher,
    release: async () => {
      if (released) return;
      released = true;
      if (--pool.users > 0) return;
      if (shared === pool) shared = undefined;
      await pool.hasher.close();
    },
  };
}
