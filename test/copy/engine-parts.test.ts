import { chunkDigestOfBytes, digestChunk, segmentsOf } from '../../copy/chunk-digest';
import { AreaPlanner, countPlannedChunksBelow, type ChunkPlan, type PlannedRange } from '../../copy/area-planner';
import { InlineLeafHasher } from '../../copy/leaf-hasher';
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

describe('AreaPlanner', () => {
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
  const all = async (planner: AreaPlanner) => {
    const plans: ChunkPlan[] = [];
    for (let p = await planner.next(); p; p = await planner.next()) plans.push(p);
    return plans;
  };
  const shape = (plans: ChunkPlan[]) => plans.map((p) => [p.ordinal, p.index, p.pieces.map((x) => [x.offset, x.length, x.kind])]);

  test('cuts a whole disk on the grid by the allocation map, merging adjacent data, across partial answers', async () => {
    const m = map(
      [
        { offset: 0, length: MiB, zero: false },
        { offset: MiB, length: MiB, zero: false },
        { offset: 2 * MiB, length: 3 * MiB, zero: true },
        { offset: 5 * MiB, length: 2 * MiB + 10, zero: false },
      ],
      1,
    );
    const size = 7 * MiB + 10;
    const plans = await all(new AreaPlanner([{ start: 0, length: size, kind: 'copy' }], m, size, 2 * MiB));
    expect(shape(plans)).toEqual([
      [0, 0, [[0, 2 * MiB, 'data']]],
      [1, 1, [[2 * MiB, 2 * MiB, 'zero']]],
      [2, 2, [[4 * MiB, MiB, 'zero'], [5 * MiB, MiB, 'data']]],
      [3, 3, [[6 * MiB, MiB + 10, 'data']]],
    ]);
    expect(plans[3].end).toBe(size);
    expect(m.calls).toBe(4);
  });

  test('plans only the chunks areas touch, numbering them in order, with ranges to clear as zero pieces', async () => {
    const ranges: PlannedRange[] = [
      { start: MiB, length: 100, kind: 'copy' },
      { start: MiB + 100, length: 50, kind: 'zero' },
      { start: 9 * MiB + 5, length: 3 * MiB, kind: 'copy' },
    ];
    const plans = await all(new AreaPlanner(ranges, undefined, 16 * MiB, 2 * MiB));
    expect(shape(plans)).toEqual([
      [0, 0, [[MiB, 100, 'data'], [MiB + 100, 50, 'zero']]],
      [1, 4, [[9 * MiB + 5, MiB - 5, 'data']]],
      [2, 5, [[10 * MiB, 2 * MiB, 'data']]],
      [3, 6, [[12 * MiB, 5, 'data']]],
    ]);
    expect(countPlannedChunksBelow(ranges, 2 * MiB, 5)).toBe(2);
    // Resuming at grid index 5 gives the same numbering as walking from the start.
    expect(shape(await all(new AreaPlanner(ranges, undefined, 16 * MiB, 2 * MiB, 5)))).toEqual(shape(plans).slice(2));
  });

  test('starts mid-disk without asking about what lies below', async () => {
    const asked: number[] = [];
    const planner = new AreaPlanner(
      [{ start: 0, length: 10 * MiB, kind: 'copy' }],
      { extents: async (offset, length) => (asked.push(offset), [{ offset, length, zero: false }]) },
      10 * MiB,
      2 * MiB,
      3,
    );
    expect(await planner.next()).toMatchObject({ ordinal: 3, index: 3, offset: 6 * MiB });
    expect(asked).toEqual([6 * MiB]);
  });

  test('an empty answer is an error, not an endless loop', async () => {
    const planner = new AreaPlanner([{ start: 0, length: 4 * MiB, kind: 'copy' }], { extents: async () => [] }, 4 * MiB, 2 * MiB);
    await expect(planner.next()).rejects.toThrow(/no extents for offset 0/);
  });
});

describe('chunk digest', () => {
  test('depends on the covered bytes only: zeros given as holes or as bytes, split anywhere, give one digest', async () => {
    const data = randomBytes(100_000);
    const full = Buffer.alloc(2 * MiB);
    data.copy(full, 300_000);
    const whole = [{ offset: 0, length: 2 * MiB, kind: 'data' as const }];
    const asBytes = chunkDigestOfBytes(full, 0, whole);
    // The same chunk as the engine sees it with a map: hole, data (ending mid-leaf), hole.
    const pieces = [
      { offset: 0, length: 300_000, kind: 'zero' as const },
      { offset: 300_000, length: 100_000, kind: 'data' as const },
      { offset: 400_000, length: 2 * MiB - 400_000, kind: 'zero' as const },
    ];
    const slot = randomBytes(2 * MiB); // a reused slot holds an earlier chunk's bytes
    data.copy(slot, 300_000);
    const viaEngine = await digestChunk(new InlineLeafHasher(), slot, 0, pieces, segmentsOf(pieces));
    expect(viaEngine.digest).toEqual(asBytes);
    expect(chunkDigestOfBytes(Buffer.alloc(2 * MiB), 0, whole)).not.toEqual(chunkDigestOfBytes(Buffer.alloc(MiB), 0, [{ offset: 0, length: MiB, kind: 'data' }]));
  });

  test('a flipped bit or the same bytes one leaf further change it', () => {
    const bytes = randomBytes(256 * 1024);
    const pieces = [{ offset: 0, length: bytes.length, kind: 'data' as const }];
    const digest = chunkDigestOfBytes(bytes, 0, pieces);
    const flipped = Buffer.from(bytes);
    flipped[200_000] ^= 1;
    expect(chunkDigestOfBytes(flipped, 0, pieces)).not.toEqual(digest);
    const shifted = Buffer.concat([Buffer.alloc(64 * 1024), bytes.subarray(0, bytes.length - 64 * 1024)]);
    expect(chunkDigestOfBytes(shifted, 0, pieces)).not.toEqual(digest);
  });
});
