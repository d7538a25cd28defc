/** The engine against a real NBD source: nbdkit's file plugin, our NbdClient, several connections. */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Extent } from '../../copy/block-device';
import { copyDisk } from '../../copy/copy-disk';
import type { CopyCheckpoint } from '../../copy/copy-options';
import { NbdClient } from '../../nbd/nbd-client';
import { startNbdkit, type NbdkitFilter, type NbdkitProcess } from '../../nbd/nbdkit';
import { MiB, sha256 } from './helpers/sparse-disk';
import { VolumeFixture } from './helpers/volume-fixture';

const SIZE = 96 * MiB;
let fx: VolumeFixture;
let sourceFile: string;
let nbdkit: NbdkitProcess | undefined;
let clients: NbdClient[] = [];

beforeEach(async () => {
  fx = new VolumeFixture();
  sourceFile = path.join(fx.dir, 'source.img');
  const h = await fs.open(sourceFile, 'w');
  await h.truncate(SIZE);
  for (let off = 256 * 1024; off + 2 * MiB <= SIZE; off += 5 * MiB) await h.write(randomBytes(1536 * 1024), 0, 1536 * 1024, off);
  await h.close();
});
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  clients = [];
  await nbdkit?.stop();
  nbdkit = undefined;
  await fx.cleanup();
});

async function serve(filters: NbdkitFilter[] = []): Promise<NbdClient[]> {
  nbdkit = await startNbdkit({ plugin: 'file', params: { file: sourceFile }, filters });
  const first = await NbdClient.connect({ socketPath: nbdkit.socketPath });
  const more = first.canMultiConn ? await Promise.all([1, 2].map(() => NbdClient.connect({ socketPath: nbdkit!.socketPath }))) : [];
  clients = [first, ...more];
  return clients;
}

/** The source's allocation as the server reports it (the engine must read exactly its data part). */
async function serverMap(client: NbdClient): Promise<Extent[]> {
  const out: Extent[] = [];
  for (let at = 0; at < client.size; ) {
    const answer = await client.extents(at, client.size - at);
    out.push(...answer);
    at = answer[answer.length - 1].offset + answer[answer.length - 1].length;
  }
  return out;
}

const dataAbove = (map: Extent[], from: number) =>
  map.filter((e) => !e.zero).reduce((n, e) => n + Math.max(0, e.offset + e.length - Math.max(e.offset, from)), 0);

describe('copyDisk over NBD (nbdkit file plugin)', () => {
  test('copies a sparse export over several connections, reading only allocated data', async () => {
    const sources = await serve();
    expect(sources.length).toBe(3); // the file plugin advertises multi-conn
    const map = await serverMap(sources[0]);
    expect(dataAbove(map, 0)).toBeLessThan(SIZE / 2); // the server does report holes
    const { target } = await fx.volume(SIZE);

    const result = await copyDisk(sources, target, { digestLogPath: fx.digestLogPath });

    expect(result.bytesRead).toBe(dataAbove(map, 0));
    expect(result.verification.match).toBe(true);
    expect(sha256(await fx.readVolume())).toBe(sha256(await fs.readFile(sourceFile)));
  });

  test('a server read error fails the attempt; the retry resumes from the last checkpoint', async () => {
    const trigger = path.join(fx.dir, 'fail-now');
    const sources = await serve([{ name: 'error', params: { error: 'EIO', 'error-pread-rate': '1', 'error-file': trigger } }]);
    const map = await serverMap(sources[0]);
    const { target } = await fx.volume(SIZE);
    const checkpoints: CopyCheckpoint[] = [];

    await expect(
      copyDisk(sources, target, {
        digestLogPath: fx.digestLogPath,
        inFlight: 2,
        checkpointBytes: 8 * MiB,
        onCheckpoint: async (c) => {
          checkpoints.push(c);
          if (c.bytesDone >= 40 * MiB) await fs.writeFile(trigger, ''); // from now on every read fails with EIO
        },
      }),
    ).rejects.toThrow(/EIO|Input\/output error/);
    const watermark = checkpoints[checkpoints.length - 1].bytesDone;
    expect(watermark).toBeGreaterThanOrEqual(40 * MiB);
    expect(watermark).toBeLessThan(SIZE);

    await fs.rm(trigger);
    const result = await copyDisk(sources, target, { digestLogPath: fx.digestLogPath, resumeFrom: watermark });
    expect(result.resumedFrom).toBe(watermark);
    expect(result.bytesRead).toBe(dataAbove(map, watermark));
    expect(result.verification.match).toBe(true);
    expect(sha256(await fx.readVolume())).toBe(sha256(await fs.readFile(sourceFile)));
  });

  test('an abort ends in-flight NBD reads promptly with the abort reason', async () => {
    const sources = await serve([{ name: 'delay', params: { rdelay: '1000ms' } }]);
    const { target } = await fx.volume(SIZE);
    const controller = new AbortController();
    const reason = new Error('workflow cancelled');
    setTimeout(() => controller.abort(reason), 300);
    const started = Date.now();
    await expect(copyDisk(sources, target, { digestLogPath: fx.digestLogPath, signal: controller.signal })).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(900); // not waiting for the delayed replies of the queued reads
  });
});
