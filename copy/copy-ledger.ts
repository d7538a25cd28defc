/**
 * Owns a copy's two watermarks. Chunks finish out of order; the *copied* watermark is the first planned chunk not
 * yet written. Every so often the ledger makes what lies below it durable (target flush, source digests written
 * and fsynced to the digest log) and hands those chunks to the verification, which reads them back. The *verified*
 * watermark (every chunk below it durable, read back and matched) is what a checkpoint publishes, so a resumed
 * attempt never starts above a chunk that was not proven, and never below one that was.
 * Flushes and publications run in the background (the copy keeps going) and never overlap themselves (serial-task.ts).
 */
import type { BlockTarget } from './block-device';
import type { ChunkPlan } from './area-planner';
import { ContiguousWatermark } from './contiguous-watermark';
import type { CopyCheckpoint } from './copy-options';
import type { CopyCounters } from './copy-counters';
import type { DigestLog } from './digest-log';
import { SerialTask } from './serial-task';

export interface LedgerPolicy {
  /** Flush after this many bytes written since the last flush… */
  flushBytes: number;
  /** …or after this long, whichever comes first. */
  flushIntervalMs: number;
  /** Publish a checkpoint at most this often (plus once at the end)… */
  publishIntervalMs: number;
  /** …or after this much verified advance, if set. */
  publishBytes?: number;
  /** Awaited; a rejection fails the copy. */
  onCheckpoint?: (checkpoint: CopyCheckpoint) => void | Promise<void>;
}

export interface CopiedChunk {
  plan: ChunkPlan;
  /** Source digest. */
  digest: Buffer;
  /** Some covered bytes were not written (holes, zeros onto a fresh target): the target's map can spare reading them. */
  skippedSome: boolean;
}

export class CopyLedger {
  private readonly copiedMark: ContiguousWatermark;
  private readonly verifiedMark: ContiguousWatermark;
  private readonly chunks = new Map<number, CopiedChunk>();
  private loggedUpTo: number;
  private flushedUpTo: number;
  private nextToVerify: number;
  private copyEnded = false;
  private lastFlushAt = Date.now();
  private lastPublishAt = Date.now();
  private flushedBytes: number;
  private writtenAtFlush = 0;
  private readonly flusher: SerialTask;
  private readonly publisher: SerialTask;
  private wake: (() => void) | undefined;
  private failure: { error: unknown } | undefined;
  /** Grid end of the last verified chunk (the published resume point). */
  private verifiedBytes: number;
  private publishedOnce = false;

  constructor(
    private readonly target: BlockTarget,
    private readonly log: DigestLog,
    private readonly counters: CopyCounters,
    firstOrdinal: number,
    resumedFrom: number,
    private readonly policy: LedgerPolicy,
    private readonly onFailure: (error: unknown) => void,
  ) {
    this.copiedMark = new ContiguousWatermark(firstOrdinal);
    this.verifiedMark = new ContiguousWatermark(firstOrdinal);
    this.loggedUpTo = this.flushedUpTo = this.nextToVerify = firstOrdinal;
    this.verifiedBytes = this.flushedBytes = resumedFrom;
    this.flusher = new SerialTask(() => this.flush(), () => this.flushDue(), (error) => this.fail(error));
    this.publisher = new SerialTask(() => this.doPublish(), () => this.publishDue(), (error) => this.fail(error));
  }

  // Copy side ----------------------------------------------------------------------------------------------------

  /** A chunk's bytes are written (not necessarily flushed) and its source digest is known. */
  copied(plan: ChunkPlan, digest: Buffer, skippedSome: boolean): void {
    this.chunks.set(plan.ordinal, { plan, digest, skippedSome });
    if (!this.copiedMark.finish(plan.ordinal)) return;
    this.counters.bytesCopied = this.endOf(this.copiedMark.index - 1);
    this.flusher.kick();
  }

  /** No more chunks will be copied: flush what is contiguous, and let the verification run out. */
  async endCopy(): Promise<void> {
    await this.settleFlushes();
    if (this.copiedMark.index > this.flushedUpTo) await this.flush();
    this.copyEnded = true;
    this.wake?.();
  }

  // Verification side --------------------------------------------------------------------------------------------

  /** The next durable chunk to read back, in order; undefined once the copy ended and all are handed out. */
  async nextToRead(signal: AbortSignal): Promise<CopiedChunk | undefined> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      signal.throwIfAborted();
      if (this.nextToVerify < this.flushedUpTo) return this.chunks.get(this.nextToVerify++) as CopiedChunk;
      if (this.copyEnded) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** A chunk read back and matched its source digest. */
  verified(ordinal: number): void {
    const from = this.verifiedMark.index;
    if (!this.verifiedMark.finish(ordinal)) return;
    const upTo = this.verifiedMark.index;
    this.verifiedBytes = this.endOf(upTo - 1);
    for (let i = from; i < upTo; i++) this.chunks.delete(i);
    this.publisher.kick();
  }

  /** Publishes the verified watermark now (after any running publication); rethrows a background failure. */
  async publish(): Promise<void> {
    await this.publisher.settle();
    if (this.failure) throw this.failure.error;
    if (!this.publishedOnce || this.verifiedBytes > this.counters.bytesDone) await this.doPublish();
  }

  /** Waits until no flush or publication is still touching the files or the callback. */
  async settle(): Promise<void> {
    await this.flusher.settle();
    await this.publisher.settle();
  }

  /** Grid end of the flushed chunks: the target's allocation map is meaningful below it. */
  get flushedEnd(): number {
    return this.flushedBytes;
  }

  // Internals ----------------------------------------------------------------------------------------------------

  private async settleFlushes(): Promise<void> {
    await this.flusher.settle();
    if (this.failure) throw this.failure.error;
  }

  private flushDue(): boolean {
    // Bytes written, not watermark advance: holes move the watermark for free, and a flush is worth its cost only
    // for data (each one also costs the verification a look at the target's allocation map).
    if (this.failure || this.copiedMark.index <= this.flushedUpTo) return false;
    const written = this.counters.bytesWritten - this.writtenAtFlush;
    return written >= this.policy.flushBytes || Date.now() - this.lastFlushAt >= this.policy.flushIntervalMs;
  }

  private publishDue(): boolean {
    const advanced = this.verifiedBytes - this.counters.bytesDone;
    if (this.failure || advanced <= 0) return false;
    if (this.policy.publishBytes !== undefined && advanced >= this.policy.publishBytes) return true;
    return Date.now() - this.lastPublishAt >= this.policy.publishIntervalMs;
  }

  private async flush(): Promise<void> {
    const upTo = this.copiedMark.index;
    const bytes = this.counters.bytesCopied;
    this.writtenAtFlush = this.counters.bytesWritten;
    const records: Buffer[] = [];
    for (let i = this.loggedUpTo; i < upTo; i++) records.push((this.chunks.get(i) as CopiedChunk).digest);
    // Both halves must be durable before the verification may prove (and a checkpoint publish) these chunks.
    await Promise.all([this.target.flush(), this.log.write(this.loggedUpTo, records).then(() => this.log.sync())]);
    this.loggedUpTo = this.flushedUpTo = upTo;
    this.flushedBytes = bytes;
    this.lastFlushAt = Date.now();
    this.wake?.();
  }

  private async doPublish(): Promise<void> {
    const bytesDone = this.verifiedBytes;
    this.lastPublishAt = Date.now();
    this.publishedOnce = true;
    this.counters.bytesDone = bytesDone;
    const { bytesTotal, areaBytes, bytesRead, bytesWritten } = this.counters;
    await this.policy.onCheckpoint?.({ bytesDone, bytesTotal, areaBytes, bytesRead, bytesWritten });
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.wake?.();
    this.onFailure(error);
  }

  private endOf(ordinal: number): number {
    return (this.chunks.get(ordinal) as CopiedChunk).plan.end;
  }
}
