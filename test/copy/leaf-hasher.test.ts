import { createHash, randomBytes } from 'node:crypto';
import { hashLeavesSync } from '../../copy/leaf-hasher';
import { WorkerLeafHasher } from '../../copy/worker-leaf-hasher';

const sha = (b: Buffer) => createHash('sha256').update(b).digest();

describe('WorkerLeafHasher', () => {
  const hasher = new WorkerLeafHasher(2);
  afterAll(() => hasher.close());

  test('hashes slices like the inline hasher and hands the bytes back', async () => {
    const data = randomBytes(300_000);
    data.fill(0, 65536, 131072);
    const slices: Array<[number, number]> = [[0, 65536], [65536, 131072], [131072, 300_000]];
    const expected = hashLeavesSync(Buffer.from(data), slices);
    const copy = Buffer.from(data);
    const result = await hasher.hash(copy, slices, true);
    expect(result.digests).toEqual(expected.digests);
    expect(result.digests[1]).toBeUndefined(); // zero leaf
    expect(result.digests[0]).toEqual(sha(data.subarray(0, 65536)));
    expect(result.data.equals(data)).toBe(true);
    expect(result.allZero).toBe(false);
  });

  test('copies (never detaches) a view into a larger buffer', async () => {
    const big = randomBytes(1 << 20);
    const view = big.subarray(4096, 4096 + 65536);
    const result = await hasher.hash(view, [[0, 65536]], false);
    expect(big.length).toBe(1 << 20); // still attached
    expect(result.digests[0]).toEqual(sha(big.subarray(4096, 4096 + 65536)));
  });

  test('reports an all-zero buffer, including bytes outside the slices', async () => {
    expect((await hasher.hash(Buffer.alloc(100_000), [[0, 65536]], false)).allZero).toBe(true);
    const tail = Buffer.alloc(100_000);
    tail[99_999] = 1;
    expect((await hasher.hash(tail, [[0, 65536]], false)).allZero).toBe(false);
  });

  test('a closed pool rejects instead of hanging', async () => {
    const closed = new WorkerLeafHasher(1);
    await closed.close();
    await expect(closed.hash(Buffer.alloc(10), [], false)).rejects.toThrow(/closed/);
  });
});
