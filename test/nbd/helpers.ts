/** Fixtures for the NBD interop tests: sparse files, qemu-nbd servers, hashing, nbdinfo. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

export const execFileP = promisify(execFile);
export const MiB = 1024 * 1024;

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vmigrate-test-${prefix}-`));
}

export interface SparseFile {
  path: string;
  size: number;
  /** Whole file contents (holes included as zeros). */
  data: Buffer;
  /** Regions written with random data. */
  regions: Array<{ offset: number; length: number }>;
}

/** A file made with truncate plus a few random-data regions; everything else is a hole. */
export function makeSparseFile(dir: string, name: string, size: number, regions: Array<{ offset: number; length: number }>): SparseFile {
  const p = path.join(dir, name);
  fs.writeFileSync(p, Buffer.alloc(0));
  fs.truncateSync(p, size);
  const data = Buffer.alloc(size);
  const fd = fs.openSync(p, 'r+');
  try {
    for (const r of regions) {
      const chunk = randomBytes(r.length);
      fs.writeSync(fd, chunk, 0, r.length, r.offset);
      chunk.copy(data, r.offset);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { path: p, size, data, regions };
}

/** Retry connecting until the Unix socket accepts (or timeout). */
export async function waitForSocket(socketPath: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ path: socketPath });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`socket ${socketPath} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ServerHandle {
  socketPath: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** qemu-nbd -r -f raw -k SOCK -t FILE (persistent: serves many connections). */
export async function startQemuNbd(file: string, dir: string, extraArgs: string[] = []): Promise<ServerHandle> {
  const socketPath = path.join(dir, `qemu-nbd-${Math.random().toString(36).slice(2, 8)}.sock`);
  const child = spawn('qemu-nbd', ['-r', '-f', 'raw', '-k', socketPath, '-t', ...extraArgs, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await Promise.race([
      waitForSocket(socketPath),
      exited.then(() => {
        throw new Error(`qemu-nbd exited early: ${stderr}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    socketPath,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export function nbdUri(socketPath: string): string {
  return `nbd+unix:///?socket=${socketPath}`;
}

export interface MapEntry {
  offset: number;
  length: number;
  type: number;
}

/** libnbd's view of base:allocation, for comparison. */
export async function nbdinfoMap(socketPath: string): Promise<MapEntry[]> {
  const { stdout } = await execFileP('nbdinfo', ['--map', '--json', nbdUri(socketPath)]);
  return JSON.parse(stdout) as MapEntry[];
}

export async function nbdinfoJson(socketPath: string): Promise<Record<string, unknown>> {
  const { stdout } = await execFileP('nbdinfo', ['--json', nbdUri(socketPath)]);
  const info = JSON.parse(stdout) as { exports: Array<Record<string, unknown>> };
  return info.exports[0];
}

/** Deterministic pseudo-random generator (tests must be reproducible). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
