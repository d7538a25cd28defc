/**
 * Child processes of the OpenStack lab: each service runs in its own process group (so stop() reaches the workers
 * uwsgi and oslo.service fork), with stdout and stderr in stateDir/logs/NAME.log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';

export interface Service {
  name: string;
  logFile: string;
  child: ChildProcess;
  /** The signal that stops it cleanly: SIGQUIT for uwsgi (SIGTERM makes it reload), SIGTERM otherwise. */
  stopSignal: NodeJS.Signals;
  /** How long a clean stop may take before SIGKILL. */
  graceMs: number;
  exited: Promise<void>;
  exitCode(): number | null;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  stopSignal?: NodeJS.Signals;
  graceMs?: number;
}

/** The last `lines` lines of a log, for error messages. */
export function logTail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

export class ProcessSet {
  readonly services: Service[] = [];
  private exitHook = () => this.killAllNow();

  constructor(private readonly logDir: string) {
    process.on('exit', this.exitHook);
  }

  logPath(name: string): string {
    return path.join(this.logDir, `${name}.log`);
  }

  start(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Service {
    const logFile = this.logPath(name);
    const fd = openSync(logFile, 'a');
    const child = spawn(cmd, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
    });
    closeSync(fd);
    let code: number | null = null;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (c, sig) => {
        code = c ?? (sig ? 128 : 1);
        resolve();
      });
      child.once('error', () => {
        code = 127;
        resolve();
      });
    });
    const svc: Service = { name, logFile, child, stopSignal: opts.stopSignal ?? 'SIGTERM', graceMs: opts.graceMs ?? 10_000, exited, exitCode: () => code };
    this.services.push(svc);
    return svc;
  }

  /** Stops one service: its group with its signal, SIGKILL after its grace. */
  async stop(s: Service): Promise<void> {
    if (s.exitCode() !== null) return;
    signalGroup(s.child.pid, s.stopSignal);
    const kill = setTimeout(() => signalGroup(s.child.pid, 'SIGKILL'), s.graceMs);
    await s.exited;
    clearTimeout(kill);
  }

  /** Stops the services (all at once, as nothing outlives the lab), each group with its signal, SIGKILL after its grace. */
  async stopAll(): Promise<void> {
    const running = [...this.services].reverse().filter((s) => s.exitCode() === null);
    await Promise.all(running.map((s) => this.stop(s)));
    // A worker whose parent died first stays in the group: the group outlives its leader.
    for (const s of this.services) signalGroup(s.child.pid, 'SIGKILL');
    process.off('exit', this.exitHook);
  }

  private killAllNow(): void {
    for (const s of this.services) signalGroup(s.child.pid, 'SIGKILL');
  }
}

export function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* the group is gone */
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command to completion with its output appended to `logFile`; rejects with the log's tail on failure. */
export async function run(cmd: string, args: string[], logFile: string, opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<void> {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], cwd: opts.cwd, env: { ...process.env, ...opts.env } });
  closeSync(fd);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  const code = await new Promise<number>((resolve) => {
    child.once('exit', (c) => resolve(c ?? 1));
    child.once('error', () => resolve(127));
  });
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}; ${logFile}:\n${logTail(logFile)}`);
}

/** Runs a command and returns its stdout (for short queries: mariadb, virsh, findmnt). */
export async function capture(cmd: string, args: string[], opts: SpawnOptions & { input?: string } = {}): Promise<string> {
  const child = spawn(cmd, args, {
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  if (child.stdin) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  }
  const code = await new Promise<number>((resolve) => {
    child.once('close', (c) => resolve(c ?? 1));
    child.once('error', () => resolve(127));
  });
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.trim() || out.trim()}`);
  return out;
}

/**
 * Processes whose command line mentions `needle` (the lab's state directory: every config path is under it), or
 * that live in the mount namespace `mntNs`: what the lab started indirectly (privsep daemons, qemu guests that
 * libvirtd detached) and must end at stop.
 */
export function labProcesses(needle: string, mntNs?: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if (mntNs && readlinkSync(`/proc/${pid}/ns/mnt`) === mntNs) {
        pids.push(pid);
        continue;
      }
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) pids.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

