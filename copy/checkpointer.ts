/**
 * Owns the durable watermark. A checkpoint is published only after the target is flushed and the digest records
 * below the watermark are fsynced, so a crash at any moment leaves "below bytesDone" fully valid on both.
 * Checkpoints run in the background (the copy keeps going) and never overlap.
 */
import type { BlockTarget } from './block-device';
import { ContiguousWatermark } from './contiguous-watermark';
import type { CopyCheckpoint } from './copy-options';
import type { CopyCounters } from './copy-counters';
import type { DigestLog } from './digest-log';

export interface CheckpointPolicy {
  intervalMs: number;
  /** Watermark advance that forces a checkpoint regardless of time; undefined = time only. */
  bytes?: number;
  onCheckpoint?: (checkpoint: CopyCheckpoint) => void | Promise<void>;
}

export class Checkpointer {
  private readonly watermark: ContiguousWatermark;
  /** Digests of finished chunks not yet in the log. */
  private readonly unlogged = new Map<number, Buffer>();
  private loggedUpTo: number;
  private lastAt = Date.now();
  private running: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  private publishedOnce = false;

  constructor(
    private readonly target: BlockTarget,
    private readonly log: DigestLog,
    private readonly counters: CopyCounters,
    private readonly chunkSize: number,
    firstIndex: number,
    private readonly policy: CheckpointPolicy,
    private readonly onFailure: (error: unknown) => void,
  ) {
    this.watermark = new ContiguousWatermark(firstIndex);
    this.loggedUpTo = firstIndex;
  }

  /** A chunk's bytes are written (not necessarily flushed) and its source digest is known. */
  finish(index: number, digest: Buffer): void {
    this.unlogged.set(index, digest);
    if (!this.watermark.finish(index)) return;
    this.counters.bytesCopied = this.bytesBelow(this.watermark.index);
    if (!this.running && this.isDue()) this.startInBackground();
  }

  /** Publishes the final watermark (waits for a running checkpoint first); rethrows a background failure. */
  async complete(): Promise<void> {
    await this.settle();
    if (this.failure) throw this.failure.error;
    // Skip only if a background checkpoint of this attempt already covered everything.
    if (this.publishedOnce && this.counters.bytesDone === this.bytesBelow(this.watermark.index)) return;
    await this.publish();
  }

  /** Lets a failed/aborted copy wait until no flush or log write is still touching the files. */
  async settle(): Promise<void> {
    // A finishing checkpoint may start the next one, hence the loop.
    while (this.running) await this.running;
  }

  private isDue(): boolean {
    const advanced = this.counters.bytesCopied - this.counters.bytesDone;
    if (advanced <= 0) return false;
    if (this.policy.bytes !== undefined && advanced >= this.policy.bytes) return true;
    return Date.now() - this.lastAt >= this.policy.intervalMs;
  }

  private startInBackground(): void {
    this.running = this.publish()
      .catch((error: unknown) => {
        this.failure ??= { error };
        this.onFailure(error);
      })
      .finally(() => {
        this.running = undefined;
        if (!this.failure && this.isDue()) this.startInBackground();
      });
  }

  private async publish(): Promise<void> {
    const upTo = this.watermark.index;
    const bytesDone = this.bytesBelow(upTo);
    const records: Buffer[] = [];
    for (let i = this.loggedUpTo; i < upTo; i++) records.push(this.unlogged.get(i) as Buffer);
    // Both halves of the invariant must be durable before anyone is told about the new watermark.
    await Promise.all([
      this.target.flush(),
      this.log.write(this.loggedUpTo, records).then(() => this.log.sync()),
    ]);
    for (let i = this.loggedUpTo; i < upTo; i++) this.unlogged.delete(i);
    this.loggedUpTo = upTo;
    this.lastAt = Date.now();
    this.counters.bytesDone = bytesDone;
    this.publishedOnce = true;
    const { bytesTotal, bytesRead, bytesWritten } = this.counters;
    await this.policy.onCheckpoint?.({ bytesDone, bytesTotal, bytesRead, bytesWritten });
  }

  private bytesBelow(index: number): number {
    return Math.min(index * this.chunkSize, this.counters.bytesTotal);
  }
}
