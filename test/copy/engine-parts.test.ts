import { chunkDigestSync as chunkDigest, zeroChunkDigest } from '../../copy/chunk-digest';
import { ChunkPlanner } from '../../copy/chunk-planner';
import { ContiguousWatermark } from '../../copy/contiguous-watermark';
import type { Extent } from '../../copy/block-device';
import { randomBytes } from 'node:crypto';

const MiB = 1024 * 1024;

describe('ContiguousWatermark', () => {
  test('advances only over a contiguous prefix of finished chunks', () => {
    const w = new ContiguousWatermark(3);
    expect(w.finish(5)).toBe(false);
    expect(w.finish(4)).toBe(false);
    expect(w.index).toBe(3);
    expect(w.finish(3)).toBe(true);
    expect(w.index).toBe(6);
    expect(() => w.finish(4)).toThrow(/finished twice/);
  });
});

describe('ChunkPlanner', () => {
  const map = (extents: Extent[], perAnswer = Infinity) => ({
    calls: 0,
    async extents(offset: number, length: number) {
      this.calls++;
      return extents
        .filter((e) => e.offset + e.length > offset && e.offset < offset + length)
        .slice(0, perAnswer)
        .map((e) => ({ ...e, offset: Math.max(e.offset, offset), length: e.offset + e.length - Math.max(e.offset, offset) }));
    },
  });

  test('cuts extents on the chunk grid, merging adjacent data, across partial answers', async () => {
    const m = map(
      [
        { offset: 0, length: MiB, zero: false },
        { offset: MiB, length: MiB, zero: false },
        { offset: 2 * MiB, length: 3 * MiB, zero: true },
        { offset: 5 * MiB, length: 2 * MiB + 10, zero: false },
      ],
      1,
    );
    const planner = new ChunkPlanner(m, 7 * MiB + 10, 2 * MiB, 0);
    const plans = [];
    for (let p = await planner.next(); p; p = await planner.next()) plans.push(p);
    expect(plans.map((p) => [p.index, p.offset, p.length, p.dataRanges.map((r) => [r.offset, r.length])])).toEqual([
      [0, 0, 2 * MiB, [[0, 2 * MiB]]],
      [1, 2 * MiB, 2 * MiB, []],
      [2, 4 * MiB, 2 * MiB, [[5 * MiB, MiB]]],
      [3, 6 * MiB, MiB + 10, [[6 * MiB, MiB + 10]]],
    ]);
    expect(m.calls).toBe(4);
  });

  test('starts mid-disk without asking about what lies below', async () => {
    const asked: number[] = [];
    const planner = new ChunkPlanner(
      { extents: async (offset, length) => (asked.push(offset), [{ offset, length, zero: false }]) },
      10 * MiB,
      2 * MiB,
      3,
    );
    expect(await planner.next()).toMatchObject({ index: 3, offset: 6 * MiB });
    expect(asked).toEqual([6 * MiB]);
  });

  test('an empty answer is an error, not an endless loop', async () => {
    const planner = new ChunkPlanner({ extents: async () => [] }, 4 * MiB, 2 * MiB, 0);
    await expect(planner.next()).rejects.toThrow(/no extents for offset 0/);
  });
});

describe('chunkDigest', () => {
  test('is the same whether zeros are given as holes or as bytes, and cheap zero chunks match', () => {
    const data = randomBytes(100_000);
    const full = Buffer.alloc(2 * MiB);
    data.copy(full, 300_000);
    const asBytes = chunkDigest(0, 2 * MiB, [{ offset: 0, data: full }]);
    const asPieces = chunkDigest(4 * MiB, 2 * MiB, [{ offset: 4 * MiB + 300_000, data }]);
    expect(asPieces).toEqual(asBytes);
    expect(zeroChunkDigest(2 * MiB)).toEqual(chunkDigest(0, 2 * MiB, [{ offset: 0, data: Buffer.alloc(2 * MiB) }]));
    expect(zeroChunkDigest(2 * MiB)).not.toEqual(zeroChunkDigest(MiB));
  });
});
