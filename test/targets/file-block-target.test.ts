import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DIRECT_ALIGN, FileBlockTarget } from '../../targets/local/file-block-target';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function sparseFile(dir: string, name: string): Promise<string> {
  const file = path.join(dir, name);
  const h = await fs.open(file, 'w');
  await h.truncate(SIZE);
  await h.close();
  return file;
}

/**
 * Writes a mix of aligned (direct), unaligned (buffered) and straddling ranges through `target`, each from target
 * memory and from ordinary Buffers, and checks the file, `read` and aligned `readInto` all match a model.
 */
async function exercise(target: FileBlockTarget): Promise<void> {
  const model = Buffer.alloc(SIZE);
  const slot = target.allocateIoBuffer(2 * MiB);
  expect(slot.length).toBe(2 * MiB);
  expect(slot.buffer).toBeInstanceOf(SharedArrayBuffer);
  const writes: Array<[number, number, 'slot' | 'plain']> = [
    [0, 2 * MiB, 'slot'], // fully aligned: all direct
    [2 * MiB + 100, 3000, 'slot'], // inside one page, unaligned: buffered
    [2 * MiB + 3100, 5000, 'slot'], // shares a page with the previous write, straddles into the next
    [4 * MiB + 1000, 3 * DIRECT_ALIGN + 123, 'slot'], // straddles: buffered head, direct middle, buffered tail
    [6 * MiB, 64 * 1024, 'plain'], // aligned offsets but an ordinary Buffer: buffered
    [6 * MiB + 64 * 1024, 64 * 1024, 'slot'], // its direct neighbour
    [8 * MiB + 512, MiB, 'slot'], // 512-aligned only: buffered head/tail around a direct middle
    [10 * MiB, 2 * MiB, 'slot'], // direct, then partly overwritten buffered (below)
    [11 * MiB - 700, 1400, 'plain'],
    [12 * MiB + 4000, 200, 'plain'],
    [12 * MiB, 2 * MiB, 'slot'], // direct over a page a buffered write just dirtied
  ];
  for (const [offset, length, kind] of writes) {
    const data = randomBytes(length);
    data.copy(model, offset);
    if (kind === 'plain') {
      await target.write(offset, data);
    } else {
      // The engine's layout: a slot holds a chunk, a range sits at its offset within the chunk.
      const chunk = Math.floor(offset / (2 * MiB)) * 2 * MiB;
      const view = slot.subarray(offset - chunk, offset - chunk + length);
      data.copy(view);
      await target.write(offset, view);
    }
  }
  await target.flush();

  expect(sha(await fs.readFile(target.filePath))).toBe(sha(model));
  expect(sha(await target.read(0, SIZE))).toBe(sha(model));
  for (let chunk = 0; chunk < SIZE; chunk += 2 * MiB) {
    const into = slot.subarray(0, 2 * MiB);
    await target.readInto(chunk, into);
    expect(sha(into)).toBe(sha(model.subarray(chunk, chunk + 2 * MiB)));
  }
  const odd = slot.subarray(5, 5 + 3 * DIRECT_ALIGN);
  await target.readInto(4 * MiB + 999, odd);
  expect(sha(odd)).toBe(sha(model.subarray(4 * MiB + 999, 4 * MiB + 999 + 3 * DIRECT_ALIGN)));
}

describe('FileBlockTarget direct I/O', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-fbt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('aligned, unaligned and straddling writes read back byte-identical', async () => {
    const file = await sparseFile(dir, 'vol.img');
    const target = await FileBlockTarget.open(file, SIZE);
    try {
      await exercise(target);
    } finally {
      await target.close();
    }
    expect(readdirSync(dir).filter((n) => n.includes('dio-probe'))).toEqual([]); // probe scratch file is gone
  });

  test('direct I/O is actually used for target memory on a filesystem that supports it', async () => {
    const file = await sparseFile(dir, 'spy.img');
    const target = await FileBlockTarget.open(file, SIZE);
    try {
      if (!target.directIo) return; // this test machine's filesystem lacks O_DIRECT: nothing to observe
      const direct = (target as unknown as { direct: { write: (...a: unknown[]) => Promise<unknown> } }).direct;
      const calls: number[] = [];
      const original = direct.write.bind(direct);
      direct.write = (...args: unknown[]) => {
        calls.push(args[3] as number);
        return original(...args);
      };
      const slot = target.allocateIoBuffer(2 * MiB);
      slot.fill(7);
      await target.write(2 * MiB, slot);
      await target.write(0, Buffer.alloc(2 * MiB, 8)); // ordinary memory: buffered
      expect(calls).toEqual([2 * MiB]);
    } finally {
      await target.close();
    }
  });

  test('falls back to buffered I/O without O_DIRECT (/dev/shm, or disabled)', async () => {
    const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/vmigrate-fbt-') : undefined;
    try {
      if (shm) {
        // tmpfs: no O_DIRECT on older kernels (open fails), accepted without alignment rules on newer ones.
        const target = await FileBlockTarget.open(await sparseFile(shm, 'vol.img'), SIZE);
        try {
          await exercise(target);
        } finally {
          await target.close();
        }
      }
      const target = await FileBlockTarget.open(await sparseFile(dir, 'buffered.img'), SIZE, { directIo: false });
      try {
        expect(target.directIo).toBe(false);
        await exercise(target);
      } finally {
        await target.close();
      }
    } finally {
      if (shm) rmSync(shm, { recursive: true, force: true });
    }
  });

  test('an unexpected EINVAL from the direct fd falls back to buffered for good, losing nothing', async () => {
    const file = await sparseFile(dir, 'einval.img');
    const target = await FileBlockTarget.open(file, SIZE);
    try {
      if (!target.directIo) return;
      const direct = (target as unknown as { direct: { write: () => Promise<unknown> } }).direct;
      direct.write = () => Promise.reject(Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' }));
      const slot = target.allocateIoBuffer(2 * MiB);
      randomBytes(2 * MiB).copy(slot);
      await target.write(4 * MiB, slot);
      expect(target.directIo).toBe(false);
      await target.flush();
      expect(sha(await target.read(4 * MiB, 2 * MiB))).toBe(sha(slot));
    } finally {
      await target.close();
    }
  });
});
