import { open } from 'node:fs/promises';

/**
 * Stands in for a running guest: seeded random writes into a VM's live -flat.vmdk (what the guest's I/O does to
 * the disk while the VM runs). Some writes are zeros, so "data became zeros" is exercised too.
 */
export interface GuestWriter {
  /** Writes done so far. */
  readonly writes: number;
  /** Stop and wait for the write in progress. */
  stop(): Promise<number>;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One burst of `count` random writes (offsets 512-aligned, 512 B – maxLength long) into [regionStart, regionStart +
 * size): the whole disk by default, or a region the guest's file systems do not use (a scratch partition).
 */
export async function randomWrites(file: string, size: number, random: () => number, count: number, maxLength = 256 * 1024, regionStart = 0): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    for (let i = 0; i < count; i++) {
      const length = Math.max(512, Math.floor((random() * maxLength) / 512) * 512);
      const offset = regionStart + Math.floor((random() * (size - length)) / 512) * 512;
      const data = Buffer.alloc(length);
      if (random() > 0.15) for (let j = 0; j < length; j += 4) data.writeUInt32LE(Math.floor(random() * 0x100000000), j);
      await fh.write(data, 0, length, offset);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes continuously (a burst every `pauseMs`) until stopped. */
export function startGuestWriter(file: string, size: number, seed: number, opts: { burst?: number; pauseMs?: number; maxLength?: number; regionStart?: number } = {}): GuestWriter {
  const random = seededRandom(seed);
  let writes = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await randomWrites(file, size, random, opts.burst ?? 4, opts.maxLength, opts.regionStart);
      writes += opts.burst ?? 4;
      await new Promise((r) => setTimeout(r, opts.pauseMs ?? 50));
    }
  })();
  return {
    get writes() {
      return writes;
    },
    async stop() {
      running = false;
      await loop;
      return writes;
    },
  };
}
