import type { CopyProgress } from './copy-options';

/** Everything an attempt has measured so far; progress, checkpoints and the result are all views of it. */
export class CopyCounters {
  phase: CopyProgress['phase'] = 'copy';
  bytesRead = 0;
  bytesWritten = 0;
  bytesZeroSkipped = 0;
  /** Contiguous completion (written, maybe not flushed). */
  bytesCopied = 0;
  /** Last published checkpoint. */
  bytesDone = 0;
  bytesVerified = 0;

  constructor(readonly bytesTotal: number) {}

  snapshot(): CopyProgress {
    return {
      phase: this.phase,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      bytesCopied: this.bytesCopied,
      bytesZeroSkipped: this.bytesZeroSkipped,
      bytesVerified: this.bytesVerified,
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
