/** Fast incompressible test data (AES-CTR keystream, GB/s) and small file helpers for the benchmarks. */
import { createCipheriv, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';

const BLOCK = 8 * 1024 * 1024;

/** A keystream generator: every call returns the next `length` pseudo-random bytes. */
export function keystream(): (length: number) => Buffer {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

/** Writes `size` incompressible bytes sequentially. */
export async function writeRandomFile(filePath: string, size: number): Promise<void> {
  const next = keystream();
  const fh = await fs.open(filePath, 'w');
  try {
    for (let off = 0; off < size; off += BLOCK) {
      const n = Math.min(BLOCK, size - off);
      await fh.write(next(n), 0, n, off);
    }
  } finally {
    await fh.close();
  }
}

/** A sparse file of `size` bytes (all holes). */
export async function createSparseFile(filePath: string, size: number): Promise<void> {
  const fh = await fs.open(filePath, 'w');
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export const MiB = 1024 * 1024;
