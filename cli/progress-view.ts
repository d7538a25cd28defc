import cliProgress from 'cli-progress';
import type { StreamEvent } from './event-stream';

/**
 * `vmigrate events --follow` on a terminal: one progress bar per disk (bytes durably written of the disk's size,
 * rate and ETA), fed by the stream's `write.progress` and `sync.progress` events, and the other events printed
 * above the bars as they arrive.
 */
export class ProgressView {
  private readonly bars = new Map<number, cliProgress.SingleBar>();
  /** When each disk's bar appeared, for its rate. */
  private readonly startedAt = new Map<number, number>();
  private readonly multi: cliProgress.MultiBar;

  constructor(private readonly stream: NodeJS.WriteStream = process.stdout) {
    this.multi = new cliProgress.MultiBar(
      {
        stream,
        format: ' {label} |{bar}| {percentage}% | {done}/{size} MiB | {rate} MiB/s | ETA {eta_formatted}',
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        // Redraw as events come, not on a timer only: a tmux pane shows the same picture a terminal would.
        fps: 5,
        forceRedraw: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /** Show one event: progress moves its disk's bar, anything else becomes a line. */
  onEvent(ev: StreamEvent): void {
    const e = ev.data as { name?: string; disk?: number; stage?: string; time?: string; data?: Record<string, unknown> };
    const d = e?.data ?? {};
    if ((ev.event === 'write.progress' || ev.event === 'sync.progress') && typeof e.disk === 'number') {
      const total = Number(d.bytesTotal ?? d.areaBytes ?? 0);
      const done = Number(d.bytesDone ?? 0);
      if (total > 0) this.update(e.disk, done, total);
      return;
    }
    if (ev.event === 'export.progress') return;
    if (ev.event === 'end') {
      this.line(`end: ${String((ev.data as { status?: string })?.status ?? '')}`);
      return;
    }
    this.line(`${e?.time ?? ''} ${ev.event}${e?.stage ? ` [${e.stage}]` : ''}${typeof e?.disk === 'number' ? ` disk ${e.disk}` : ''}`);
  }

  /** A line above the bars (the bars redraw below it); before any bar exists, straight to the terminal. */
  private line(text: string): void {
    if (this.bars.size) this.multi.log(`${text}\n`);
    else this.stream.write(`${text}\n`);
  }

  private update(disk: number, done: number, total: number): void {
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    let bar = this.bars.get(disk);
    if (!bar) {
      bar = this.multi.create(total, 0, { label: `disk ${disk}`, done: mib(0), size: mib(total), rate: '0.0' });
      this.bars.set(disk, bar);
      this.startedAt.set(disk, Date.now());
    }
    const seconds = Math.max(0.001, (Date.now() - this.startedAt.get(disk)!) / 1000);
    bar.setTotal(total);
    bar.update(done, { done: mib(done), size: mib(total), rate: (done / 2 ** 20 / seconds).toFixed(1) });
  }

  stop(): void {
    // Lines logged since the last redraw are written by a redraw: one more before stopping.
    if (this.bars.size) this.multi.update();
    this.multi.stop();
  }
}
