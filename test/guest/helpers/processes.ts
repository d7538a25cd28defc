import { readdirSync, readFileSync } from 'node:fs';

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/**
 * The tool's own process behind the pid spawnTool reports: as root that pid is `unshare`, and the tool runs under a
 * shell in its PID namespace (guest/tool-process.ts); otherwise the pid is the tool itself.
 */
export function toolPid(spawnedPid: number): number {
  const name = (pid: number) => cmdline(pid).split(' ')[0];
  const queue = [spawnedPid];
  while (queue.length) {
    const pid = queue.shift()!;
    if (!['unshare', 'sh', 'setpriv'].includes(name(pid))) return pid;
    try {
      queue.push(...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* gone */
    }
  }
  return spawnedPid;
}

export function commandOf(pid: number): string {
  return cmdline(pid);
}

/** Live processes whose command line mentions `text` (e.g. a scratch directory a tool was handed). */
export function processesMentioning(text: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .map((d) => cmdline(Number(d)))
    .filter((c) => c.includes(text));
}
