import type { CopyProgress } from './copy-options';

/** Everything an attempt has measured so far; progress, checkpoints and the result are all views of it. */
export class CopyCounters {
  bytesRead = 0;
  bytesWritten = 0;
  /** Of bytesWritten: zeros written to clear stale data. */
  bytesZeroed = 0;
  /** Covered bytes neither read nor written (holes) or read but not written (zeros onto a fresh target). */
  bytesZeroSkipped = 0;
  /** Grid end of the contiguous copied (written, maybe not flushed) chunks. */
  bytesCopied = 0;
  /** Last published checkpoint: everything below is durable and verified. */
  bytesDone = 0;
  /** Target bytes read back by this attempt. */
  bytesReadBack = 0;
  readRetries = 0;
  reconnects = 0;

  constructor(
    readonly bytesTotal: number,
    /** Sum of the areas' lengths. */
    readonly areaBytes: number,
  ) {}

  snapshot(): CopyProgress {
    return {
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
      areaBytes: this.areaBytes,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      bytesCopied: this.bytesCopied,
      bytesZeroSkipped: this.bytesZeroSkipped,
      bytesReadBack: this.bytesReadBack,
      readRetries: this.readRetries,
    };
  }
}

/** Calls onProgress at most every intervalMs (plus a forced final call), never letting it throw into the copy. */
export class ProgressReporter {
  private lastAt = 0;

  constructor(
    private readonly counters: CopyCounters,
    private readonly onProgress: ((p: CopyProgress) => void) | undefined,
    private readonly intervalMs: number,
  ) {}

  tick(force = false): void {
    if (!this.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    try {
      this.onProgress(this.counters.snapshot());
    } catch {
      // Progress is advisory; a faulty listener must not fail the copy.
    }
  }
}
