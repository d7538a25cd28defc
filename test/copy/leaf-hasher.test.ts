import { randomBytes } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import { hashLeavesSync } from '../../copy/leaf-hasher';
import { WorkerLeafHasher } from '../../copy/worker-leaf-hasher';

const digestOf = (b: Buffer) => blake3(b);

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
    expect(result.digests[0]).toEqual(digestOf(data.subarray(0, 65536)));
    expect(result.data.equals(data)).toBe(true);
  });

  test('copies (never detaches) a view into a larger buffer', async () => {
    const big = randomBytes(1 << 20);
    const view = big.subarray(4096, 4096 + 65536);
    const result = await hasher.hash(view, [[0, 65536]], false);
    expect(big.length).toBe(1 << 20); // still attached
    expect(result.digests[0]).toEqual(digestOf(big.subarray(4096, 4096 + 65536)));
  });

  test('reads a shared buffer in place, leaving it usable', async () => {
    const shared = Buffer.from(new SharedArrayBuffer(200_000));
    randomBytes(200_000).copy(shared);
    const result = await hasher.hash(shared, [[0, 65536], [65536, 200_000]], true);
    expect(result.data).toBe(shared);
    expect(result.digests[1]).toEqual(digestOf(shared.subarray(65536, 200_000)));
  });

  test('a closed pool rejects instead of hanging', async () => {
    const closed = new WorkerLeafHasher(1);
    await closed.close();
    await expect(closed.hash(Buffer.alloc(10), [], false)).rejects.toThrow(/closed/);
  });
});
