/**
 * Reads from a disk's source connections that survive faults: a failed read is tried again (on the next connection,
 * after a backoff), a connection that broke is replaced through `reopen` (which may restart the server behind it),
 * and only a request that fails on every try fails the copy, as a SourceReadError naming its offset and the
 * source's own message. A flaky source therefore costs retries, not attempts, and a dead one fails in bounded time.
 */
import { abortable } from './abortable';
import type { BlockSource, Extent } from './block-device';

export interface ReadRetryPolicy {
  /** Tries per request, the first included. Default 5. */
  tries: number;
  /** Wait before try n+1 is backoffMs · 4^(n-1), capped at maxBackoffMs. Defaults 100 ms and 3 s. */
  backoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_READ_RETRY: ReadRetryPolicy = { tries: 5, backoffMs: 100, maxBackoffMs: 3000 };

/** One request failed on every try. Retrying the attempt may help (a server that comes back); the caller decides. */
export class SourceReadError extends Error {
  override readonly name = 'SourceReadError';

  constructor(
    readonly offset: number,
    readonly length: number,
    readonly tries: number,
    /** The source's own message for the last try. */
    readonly sourceMessage: string,
    readonly operation: 'read' | 'block status' = 'read',
  ) {
    super(`source ${operation} at offset ${offset} (length ${length}) failed on all ${tries} tries: ${sourceMessage}`);
  }
}

/** Where the reader counts what faults cost (the copy's counters). */
export interface SourceFaultCounts {
  /** Tries after a failed one. */
  readRetries: number;
  /** Connections replaced. */
  reconnects: number;
}

export class SourceReader {
  readonly size: number;
  private turn = 0;
  /** Per connection index: a reopen in progress (shared by every lane that found it broken). */
  private readonly reopening = new Map<number, Promise<void>>();

  constructor(
    private readonly sources: BlockSource[],
    private readonly signal: AbortSignal,
    private readonly policy: ReadRetryPolicy = DEFAULT_READ_RETRY,
    /** Replaces connection `index` (and whatever serves it) after it broke; absent: broken connections stay out. */
    private readonly reopen: ((index: number) => Promise<BlockSource>) | undefined,
    private readonly counts: SourceFaultCounts,
  ) {
    if (sources.length === 0) throw new Error('a copy needs at least one source connection');
    this.size = sources[0].size;
  }

  /** Reads exactly `dest.length` bytes at `offset` into `dest`. */
  readInto(offset: number, dest: Buffer): Promise<void> {
    return this.withRetries('read', offset, dest.length, async (source) => {
      if (source.readInto) {
        await abortable(source.readInto(offset, dest, this.signal), this.signal);
        return;
      }
      const data = await abortable(source.read(offset, dest.length, this.signal), this.signal);
      if (data.length !== dest.length) throw new Error(`short read at offset ${offset}: got ${data.length} of ${dest.length} bytes`);
      data.copy(dest);
    });
  }

  extents(offset: number, length: number): Promise<Extent[]> {
    return this.withRetries('block status', offset, length, (source) => source.extents(offset, length));
  }

  private async withRetries<T>(operation: 'read' | 'block status', offset: number, length: number, attempt: (s: BlockSource) => Promise<T>): Promise<T> {
    let lastError = '';
    for (let n = 1; ; n++) {
      this.signal.throwIfAborted();
      const index = this.turn++ % this.sources.length;
      try {
        await this.reopening.get(index);
        return await attempt(this.sources[index]);
      } catch (error) {
        if (this.signal.aborted) throw this.signal.reason;
        lastError = error instanceof Error ? error.message : String(error);
        if (n >= this.policy.tries) throw new SourceReadError(offset, length, n, lastError, operation);
        this.counts.readRetries++;
        if (this.sources[index].broken) this.reopenInBackground(index);
        await sleep(Math.min(this.policy.backoffMs * 4 ** (n - 1), this.policy.maxBackoffMs), this.signal);
      }
    }
  }

  private reopenInBackground(index: number): void {
    if (!this.reopen || this.reopening.has(index)) return;
    const old = this.sources[index];
    const done = this.reopen(index)
      .then((fresh) => {
        this.sources[index] = fresh;
        this.counts.reconnects++;
        void old.close().catch(() => undefined);
      })
      // A failed reopen leaves the broken connection: its reads fail fast, and the next failure tries again.
      .catch(() => undefined)
      .finally(() => this.reopening.delete(index));
    this.reopening.set(index, done);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
