import { closeSync, existsSync, openSync, readSync } from 'node:fs';

/**
 * The serial consoles of a guest that moves between hosts (each host writes its own file), read as they grow: every
 * line stamped with when this process first saw it and which host's file it came from. What a live-migration test
 * measures the guest's pause by, from outside it.
 */
export class ConsoleWatch {
  readonly lines: Array<{ at: number; text: string; host: string }> = [];
  private readonly offsets = new Map<string, number>();
  private readonly partial = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  constructor(private readonly files: Array<{ host: string; file: string }>) {}
  start(): void {
    this.timer = setInterval(() => this.poll(), 5);
    this.timer.unref(); // a test that failed before stop() must not keep jest alive
  }
  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }
  private poll(): void {
    const now = Date.now();
    for (const { host, file } of this.files) {
      if (!existsSync(file)) continue;
      const fd = openSync(file, 'r');
      try {
        const buf = Buffer.alloc(65536);
        let off = this.offsets.get(file) ?? 0;
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, off);
          if (n <= 0) break;
          off += n;
          const text = (this.partial.get(file) ?? '') + buf.subarray(0, n).toString('latin1');
          const parts = text.split('\n');
          this.partial.set(file, parts.pop() ?? '');
          for (const p of parts) this.lines.push({ at: now, text: p.replace(/\r$/, ''), host });
        }
        this.offsets.set(file, off);
      } finally {
        closeSync(fd);
      }
    }
  }
}


/** The intervals between consecutive lines: the longest within one host's console, and the one across hosts. */
export function switchoverGaps(lines: ConsoleWatch['lines']): { steadyMs: number; switchoverMs?: number } {
  const gaps = lines.slice(1).map((l, i) => ({ ms: l.at - lines[i]!.at, across: l.host !== lines[i]!.host }));
  return { steadyMs: Math.max(0, ...gaps.filter((g) => !g.across).map((g) => g.ms)), switchoverMs: gaps.find((g) => g.across)?.ms };
}
