import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { BlockTarget } from '../../copy/block-device';
import { copyDisk, VerificationError } from '../../copy/copy-disk';
import { ScriptedSource } from './helpers/scripted-source';
import { MiB, sparseDisk } from './helpers/sparse-disk';
import { CorruptingTarget, DroppingTarget, ShiftingTarget } from './helpers/wrapped-targets';
import { VolumeFixture } from './helpers/volume-fixture';
import { referenceChunkDigests, referenceDiskDigest } from './helpers/reference-digest';

let fx: VolumeFixture;
beforeEach(() => {
  fx = new VolumeFixture();
});
afterEach(() => fx.cleanup());

/** Hides the target's allocation map, so verification must read everything back. */
function plainTarget(t: BlockTarget): BlockTarget {
  return { size: t.size, write: (o, d) => t.write(o, d), read: (o, l) => t.read(o, l), flush: () => t.flush(), close: () => t.close() };
}

describe('copyDisk verification', () => {
  test.each([0, 1, 3])('digests follow the documented format with %i hash threads; the log holds a record per chunk', async (hashThreads) => {
    // Odd offsets: leaves straddle data/hole boundaries and the last chunk and leaf are short.
    const disk = sparseDisk(10 * MiB + 4096, [[MiB + 1000, 3 * MiB], [9 * MiB, MiB + 4096]]);
    const { target } = await fx.volume(disk.content.length);
    const result = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], target, { digestLogPath: fx.digestLogPath, hashThreads });

    expect(result.verification.source).toBe(referenceDiskDigest(disk.content, 2 * MiB));
    expect(result.verification.leafSize).toBe(64 * 1024);
    const log = await fs.readFile(fx.digestLogPath);
    expect(log).toEqual(Buffer.concat(referenceChunkDigests(disk.content, 2 * MiB)));
  });

  test('the digest depends on content only, not on how the source reports allocation', async () => {
    const disk = sparseDisk(12 * MiB, [[3 * MiB + 100, 2 * MiB]]);
    const a = await fx.volume(disk.content.length, 'a');
    const b = await fx.volume(disk.content.length, 'b');
    const sparse = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], a.target, { digestLogPath: `${fx.digestLogPath}.a` });
    const dense = await copyDisk([new ScriptedSource(disk.content, [{ offset: 0, length: 12 * MiB, zero: false }])], b.target, {
      digestLogPath: `${fx.digestLogPath}.b`,
    });
    expect(dense.bytesRead).toBe(12 * MiB);
    expect(dense.verification.source).toBe(sparse.verification.source);
  });

  test('a corrupted write fails verification naming the first bad chunk', async () => {
    const disk = sparseDisk(16 * MiB, [[0, 16 * MiB]]);
    const { target } = await fx.volume(disk.content.length);
    const corrupting = new CorruptingTarget(target, 5 * MiB + 100);
    const err = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], corrupting, { digestLogPath: fx.digestLogPath }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).firstMismatchOffset).toBe(4 * MiB);
    expect((err as VerificationError).message).toMatch(/offset 4194304/);
    expect((err as VerificationError).verification.match).toBe(false);
  });

  test('a lost write fails verification naming its chunk', async () => {
    const disk = sparseDisk(16 * MiB, [[0, 16 * MiB]]);
    const { target } = await fx.volume(disk.content.length);
    const dropping = new DroppingTarget(target, 9 * MiB);
    const err = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], dropping, { digestLogPath: fx.digestLogPath }).catch((e: unknown) => e);
    expect(dropping.dropped).toBe(1);
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).firstMismatchOffset).toBe(8 * MiB);
  });

  test.each([
    ['into a hole of the source', 6 * MiB],
    ['over data of the source', -2 * MiB],
  ])('a write stored at the wrong offset (%s) fails verification naming the lowest chunk it spoiled', async (_name, shift) => {
    // Data in [0, 4 MiB) and [12 MiB, 14 MiB); the chunk at 2 MiB is stored 6 MiB further on or 2 MiB before.
    const disk = sparseDisk(16 * MiB, [[0, 4 * MiB], [12 * MiB, 2 * MiB]]);
    const { target } = await fx.volume(disk.content.length);
    const shifting = new ShiftingTarget(target, 2 * MiB, shift);
    const err = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], shifting, { digestLogPath: fx.digestLogPath }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerificationError);
    // Into a hole, the chunk itself is the lowest spoiled one. Over data, whichever of the two chunks was written
    // last holds its own bytes: the other one is reported.
    const spoiled = shift > 0 ? [2 * MiB] : [0, 2 * MiB];
    expect(spoiled).toContain((err as VerificationError).firstMismatchOffset);
  });

  test.each([
    ['allocation-aware target', false],
    ['target read back in full', true],
  ])('stale bytes in a region the source reports as a hole are caught (%s)', async (_name, hideMap) => {
    const disk = sparseDisk(16 * MiB, [[0, MiB]]);
    const { target, file } = await fx.volume(disk.content.length);
    // Garbage left in the volume where the source has a hole: the engine skips holes, so only verification can tell.
    const handle = await fs.open(file, 'r+');
    await handle.write(randomBytes(4096), 0, 4096, 11 * MiB + 8192);
    await handle.close();
    const err = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], hideMap ? plainTarget(target) : target, {
      digestLogPath: fx.digestLogPath,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).firstMismatchOffset).toBe(10 * MiB);
  });

  test('a target without an allocation map verifies by reading everything back', async () => {
    const disk = sparseDisk(8 * MiB, [[2 * MiB, MiB]]);
    const { target } = await fx.volume(disk.content.length);
    let readBack = 0;
    const counting: BlockTarget = { ...plainTarget(target), read: (o, l) => ((readBack += l), target.read(o, l)) };
    const result = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], counting, { digestLogPath: fx.digestLogPath });
    expect(result.verification.match).toBe(true);
    expect(readBack).toBe(8 * MiB);
  });
});
