import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';

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
      let fd: number;
      try {
        fd = openSync(file, 'r');
      } catch (err) {
        // Not there yet, or gone: Nova removes the source's instance directory once the guest has left it.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
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

/**
 * libvirt's events of the hosts' domains (`virsh event --loop --timestamp --all`), as they happen: when the source
 * paused a migrating guest and when the destination resumed it — the pause as the guest lives it, of which QEMU's
 * reported downtime is the part until the last byte was sent — and, for a failure's message, everything else (a guest
 * that reset, a block job that ended).
 */
export class DomainEvents {
  /** Every domain event of the hosts (lifecycle, reboot, block jobs, …), `kind` being libvirt's name for it. */
  readonly events: Array<{ at: number; host: string; domain: string; kind: string; event: string }> = [];
  private readonly children: ChildProcess[] = [];
  constructor(private readonly hosts: Array<{ host: string; uri: string }>) {}
  start(): void {
    for (const { host, uri } of this.hosts) {
      // Line-buffered: each event as it is printed, not when the pipe's buffer fills.
      const child = spawn('stdbuf', ['-oL', 'virsh', '-c', uri, 'event', '--loop', '--timestamp', '--all'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let partial = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) {
          // 2026-12-02 19:14:01.123+0000: event 'lifecycle' for domain 'instance-00000001': Suspended Migrated
          // 2026-12-02 19:14:03.456+0000: event 'reboot' for domain 'instance-00000001'
          const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\+0000: event '([^']+)' for domain '([^']+)'(?:: (.*))?$/.exec(line.trim());
          if (m) this.events.push({ at: Date.parse(`${m[1]}T${m[2]}Z`), host, kind: m[3]!, domain: m[4]!, event: m[5] ?? '' });
        }
      });
      this.children.push(child);
    }
  }
  stop(): void {
    for (const c of this.children) c.kill();
  }
  /** What happened to `domain` on each host, in order, for a failure's message. */
  describe(domain: string, since: number): string[] {
    return this.events.filter((e) => e.domain === domain).map((e) => `${e.host} +${e.at - since} ms: ${e.kind}${e.event ? ` ${e.event}` : ''}`);
  }
  /** From the source's "Suspended Migrated" to the destination's "Resumed Migrated" of `domain`. */
  pauseMs(domain: string, source: string, destination: string): number | undefined {
    const lifecycle = this.events.filter((e) => e.domain === domain && e.kind === 'lifecycle');
    const paused = lifecycle.find((e) => e.host === source && e.event === 'Suspended Migrated');
    const resumed = lifecycle.find((e) => e.host === destination && e.event === 'Resumed Migrated' && (!paused || e.at >= paused.at));
    return paused && resumed ? resumed.at - paused.at : undefined;
  }
}
