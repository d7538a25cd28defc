import { statSync } from 'node:fs';
import type { BlockTarget } from '../../copy/block-device';
import { copyDisk } from '../../copy/copy-disk';
import { SourceReadError } from '../../copy/source-reader';
import type { CopyProgress } from '../../copy/copy-options';
import { ScriptedSource } from './helpers/scripted-source';
import { MiB, sha256, sparseDisk } from './helpers/sparse-disk';
import { VolumeFixture } from './helpers/volume-fixture';

let fx: VolumeFixture;
beforeEach(() => {
  fx = new VolumeFixture();
});
afterEach(() => fx.cleanup());

function overlaps(a: { offset: number; length: number }, b: { offset: number; length: number }): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

describe('copyDisk', () => {
  test('copies data extents only, never reads zero extents, and leaves the target sparse', async () => {
    const disk = sparseDisk(64 * MiB, [[0, 3 * MiB], [10 * MiB + 4096, 512 * 1024], [40 * MiB, 5 * MiB], [63 * MiB, MiB]]);
    const source = new ScriptedSource(disk.content, disk.allocation);
    const { target, file } = await fx.volume(disk.content.length);

    const result = await copyDisk([source], target, { digestLogPath: fx.digestLogPath });

    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
    expect(result.bytesRead).toBe(disk.allocatedBytes);
    expect(result.bytesWritten).toBe(disk.allocatedBytes);
    expect(result.bytesZeroSkipped).toBe(disk.content.length - disk.allocatedBytes);
    expect(result.resumedFrom).toBe(0);
    expect(result.verification).toMatchObject({ algorithm: 'blake3-tree', chunkSize: 2 * MiB, match: true, chunks: 32 });
    expect(result.verification.source).toMatch(/^[0-9a-f]{64}$/);
    expect(result.verification.target).toBe(result.verification.source);
    for (const read of source.reads) {
      for (const hole of disk.allocation.filter((e) => e.zero)) expect(overlaps(read, hole)).toBe(false);
    }
    // Only the allocated ~9.5 MiB may occupy blocks.
    expect(statSync(file).blocks * 512).toBeLessThanOrEqual(disk.allocatedBytes + MiB);
  });

  test('a data extent that reads as zeros is digested but not written', async () => {
    const disk = sparseDisk(8 * MiB, [[0, MiB]]);
    // Declare 2..6 MiB as data although it holds zeros (what a thick VMDK reports).
    const allocation = [
      { offset: 0, length: MiB, zero: false },
      { offset: MiB, length: MiB, zero: true },
      { offset: 2 * MiB, length: 4 * MiB, zero: false },
      { offset: 6 * MiB, length: 2 * MiB, zero: true },
    ];
    const source = new ScriptedSource(disk.content, allocation);
    const { target, file } = await fx.volume(disk.content.length);

    const result = await copyDisk([source], target, { digestLogPath: fx.digestLogPath });

    expect(result.bytesRead).toBe(5 * MiB);
    expect(result.bytesWritten).toBe(MiB);
    expect(result.bytesZeroSkipped).toBe(7 * MiB);
    expect(statSync(file).blocks * 512).toBeLessThanOrEqual(MiB + 64 * 1024);
    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
  });

  test('loops over partial extent answers and completes out-of-order reads correctly', async () => {
    const ranges: Array<[number, number]> = [];
    for (let off = 0; off < 30 * MiB; off += 700 * 1024) ranges.push([off, 300 * 1024]);
    const disk = sparseDisk(30 * MiB + 12345, ranges);
    const source = new ScriptedSource(disk.content, disk.allocation, { maxExtentsPerAnswer: 1, maxDelayMs: 5 });
    const { target } = await fx.volume(disk.content.length);

    const result = await copyDisk([source], target, { digestLogPath: fx.digestLogPath, chunkSize: 1 * MiB, inFlight: 8 });

    expect(source.extentCalls).toBeGreaterThanOrEqual(disk.allocation.length);
    expect(result.bytesRead).toBe(disk.allocatedBytes);
    expect(result.bytesTotal).toBe(30 * MiB + 12345);
    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
  });

  test('spreads reads round-robin over several connections', async () => {
    const disk = sparseDisk(32 * MiB, [[0, 32 * MiB]]);
    const sources = [0, 1, 2].map(() => new ScriptedSource(disk.content, disk.allocation));
    const { target } = await fx.volume(disk.content.length);

    const result = await copyDisk(sources, target, { digestLogPath: fx.digestLogPath });

    expect(result.bytesRead).toBe(32 * MiB);
    for (const s of sources) expect(s.reads.length).toBeGreaterThanOrEqual(5);
    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
  });

  test('reports progress through both phases, ending at the totals', async () => {
    const disk = sparseDisk(16 * MiB, [[MiB, 6 * MiB]]);
    const source = new ScriptedSource(disk.content, disk.allocation);
    const { target } = await fx.volume(disk.content.length);
    const seen: CopyProgress[] = [];

    await copyDisk([source], target, { digestLogPath: fx.digestLogPath, onProgress: (p) => seen.push(p), progressIntervalMs: 0 });

    expect(seen.some((p) => p.bytesCopied > p.bytesDone)).toBe(true); // written before proven
    const last = seen[seen.length - 1];
    // Everything written is read back; the holes are known from the target's map and are not.
    expect(last).toMatchObject({ bytesDone: 16 * MiB, bytesCopied: 16 * MiB, bytesReadBack: 6 * MiB, bytesRead: 6 * MiB });
    for (let i = 1; i < seen.length; i++) expect(seen[i].bytesDone).toBeGreaterThanOrEqual(seen[i - 1].bytesDone);
  });

  test('propagates a source read error with its message', async () => {
    const disk = sparseDisk(16 * MiB, [[0, 16 * MiB]]);
    const source = new ScriptedSource(disk.content, disk.allocation, { failAfterBytes: 5 * MiB });
    const { target } = await fx.volume(disk.content.length);

    const err = await copyDisk([source], target, { digestLogPath: fx.digestLogPath, readRetry: { tries: 2, backoffMs: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as SourceReadError).message).toMatch(/source read at offset \d+ \(length \d+\) failed on all 2 tries: injected source failure/);
  });

  test('refuses a target smaller than the source and connections of different sizes', async () => {
    const disk = sparseDisk(4 * MiB, [[0, MiB]]);
    const { target } = await fx.volume(2 * MiB);
    await expect(copyDisk([new ScriptedSource(disk.content, disk.allocation)], target, { digestLogPath: fx.digestLogPath })).rejects.toThrow(
      /smaller than the source/,
    );
    const other = sparseDisk(2 * MiB, [[0, MiB]]);
    const sources = [new ScriptedSource(other.content, other.allocation), new ScriptedSource(disk.content, disk.allocation)];
    await expect(copyDisk(sources, target, { digestLogPath: fx.digestLogPath })).rejects.toThrow(/disagree on the disk size/);
  });

  test('fails when the allocation map has a gap instead of looping forever', async () => {
    const disk = sparseDisk(8 * MiB, [[0, MiB]]);
    const broken = [{ offset: 0, length: MiB, zero: false }, { offset: 3 * MiB, length: 5 * MiB, zero: true }];
    const { target } = await fx.volume(disk.content.length);
    await expect(
      copyDisk([new ScriptedSource(disk.content, broken)], target as BlockTarget, { digestLogPath: fx.digestLogPath }),
    ).rejects.toThrow(/allocation map has a gap/);
  });
});
