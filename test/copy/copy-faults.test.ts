/**
 * The engine against a real faulty source: nbdkit's error filter failing a share of requests, its ddrescue filter
 * refusing everything from an offset on, and nbdkit killed in the middle of a copy. 1 GiB, unthrottled.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeRandomFile } from '../../bench/bench-files';
import type { BlockSource } from '../../copy/block-device';
import { copyDisk } from '../../copy/copy-disk';
import type { CopyCheckpoint, CopyResult } from '../../copy/copy-options';
import { SourceReadError } from '../../copy/source-reader';
import { NbdClient } from '../../nbd/nbd-client';
import { startNbdkit, type NbdkitFilter, type NbdkitProcess } from '../../nbd/nbdkit';
import { sha256File } from '../../tools/disk-image';
import { MiB } from './helpers/sparse-disk';
import { VolumeFixture } from './helpers/volume-fixture';

const SIZE = 1024 * MiB;
let fx: VolumeFixture;
let sourceFile: string;
let sourceSha: string;

beforeAll(async () => {
  fx = new VolumeFixture();
  sourceFile = path.join(fx.dir, 'source.img');
  await writeRandomFile(sourceFile, SIZE);
  sourceSha = await sha256File(sourceFile);
}, 60_000);
afterAll(() => fx.cleanup());

/** A source served by nbdkit, reopened the way a disk export does: restart nbdkit if it died, then reconnect. */
class FaultySource {
  nbdkit: NbdkitProcess | undefined;
  connections: NbdClient[] = [];
  restarts = 0;
  private dead = false;
  private restarting: Promise<void> | undefined;

  constructor(private readonly filters: NbdkitFilter[]) {}

  async open(count: number): Promise<NbdClient[]> {
    await this.start();
    for (let i = 0; i < count; i++) this.connections.push(await NbdClient.connect({ socketPath: this.nbdkit!.socketPath }));
    return this.connections;
  }

  reopen = async (index: number): Promise<BlockSource> => {
    if (this.dead) {
      this.restarting ??= (this.restarts++, this.start()).finally(() => (this.restarting = undefined));
    }
    await this.restarting;
    const fresh = await NbdClient.connect({ socketPath: this.nbdkit!.socketPath });
    this.connections[index] = fresh;
    return fresh;
  };

  kill(): void {
    process.kill(this.nbdkit!.pid, 'SIGKILL');
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.connections.map((c) => c.close()));
    await this.nbdkit?.stop();
  }

  private async start(): Promise<void> {
    await this.nbdkit?.stop();
    this.nbdkit = await startNbdkit({ plugin: 'file', params: { file: sourceFile }, filters: this.filters, socketDir: fx.dir });
    this.dead = false;
    const server = this.nbdkit;
    void server.exited.then(() => {
      if (this.nbdkit === server) this.dead = true;
    });
  }
}

async function copyThrough(source: FaultySource, name: string, onEachCheckpoint?: (c: CopyCheckpoint) => void) {
  const connections = await source.open(4);
  const { target } = await fx.volume(SIZE, name);
  const checkpoints: CopyCheckpoint[] = [];
  try {
    const result: CopyResult = await copyDisk(connections, target, {
      digestLogPath: path.join(fx.dir, 'work', `${name}.digests`),
      reopenSource: source.reopen,
      onCheckpoint: (c) => {
        checkpoints.push(c);
        onEachCheckpoint?.(c);
      },
      checkpointIntervalMs: 100,
    });
    return { result, checkpoints, file: fx.driver.volumePath('p', name) };
  } finally {
    await source.close();
  }
}

const nonDecreasing = (cs: CopyCheckpoint[]) => cs.every((c, i) => i === 0 || c.bytesDone >= cs[i - 1].bytesDone);

describe('a copy through source faults', () => {
  test.each([
    ['1 %', '1%'],
    ['10 %', '10%'],
  ])('completes byte-identical when %s of requests fail, each attempt resuming where the last one proved', async (_name, rate) => {
    const name = `rate-${rate.replace('%', '')}`;
    const { target } = await fx.volume(SIZE, name);
    const file = fx.driver.volumePath('p', name);
    const checkpoints: CopyCheckpoint[][] = [];
    let result: CopyResult | undefined;
    // As the activity does: a failed attempt (a request failed on all its tries) is followed by one from its watermark.
    for (let attempt = 1; !result && attempt <= 5; attempt++) {
      const source = new FaultySource([{ name: 'error', params: { 'error-rate': rate, error: 'EIO' } }]);
      const seen: CopyCheckpoint[] = [];
      checkpoints.push(seen);
      try {
        result = await copyDisk(await source.open(4), target, {
          digestLogPath: path.join(fx.dir, 'work', `${name}.digests`),
          reopenSource: source.reopen,
          resumeFrom: checkpoints.at(-2)?.at(-1)?.bytesDone ?? 0,
          checkpointIntervalMs: 100,
          onCheckpoint: (c) => void seen.push(c),
        });
      } catch (err) {
        if (!(err instanceof SourceReadError)) throw err;
      } finally {
        await source.close();
      }
    }
    expect(result?.verification.match).toBe(true);
    expect(await sha256File(file)).toBe(sourceSha);
    const all = checkpoints.flat();
    expect(nonDecreasing(all)).toBe(true);
    expect(all[all.length - 1].bytesDone).toBe(SIZE);
    if (rate === '10%') expect(result!.readRetries).toBeGreaterThan(10);
    process.stdout.write(`error-rate ${rate}: ${checkpoints.length} attempt(s), ${result!.readRetries} requests tried again in the last\n`);
  }, 180_000);

  test('fails within a bounded time, naming the offset and the source message, when everything from an offset on fails', async () => {
    const bad = 40 * MiB;
    const map = path.join(fx.dir, 'bad-from-40M.map');
    const hex = (n: number) => `0x${n.toString(16)}`;
    await fs.writeFile(map, `# Mapfile\n0x0 + 1\n#  pos size status\n0x0 ${hex(bad)} +\n${hex(bad)} ${hex(SIZE - bad)} -\n`);
    const source = new FaultySource([{ name: 'ddrescue', params: { 'ddrescue-mapfile': map } }]);
    const checkpoints: CopyCheckpoint[] = [];
    const started = Date.now();
    const err = await copyThrough(source, 'bad-region', (c) => checkpoints.push(c)).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(SourceReadError);
    const readError = err as SourceReadError;
    // The lowest failing request is the one reported: the chunk at the bad offset, after every lane below it finished.
    expect(readError.offset).toBe(bad);
    expect(readError.message).toMatch(/^source read at offset 41943040 \(length 2097152\) failed on all 5 tries: .*Input\/output error/);
    // Before failing, the attempt made durable, verified and published everything the source could serve.
    expect(checkpoints[checkpoints.length - 1].bytesDone).toBe(bad);
    expect(elapsed).toBeLessThan(30_000);
  }, 60_000);

  test('completes when nbdkit is killed in the middle of the copy: it is restarted and the connections reopened', async () => {
    // Slow enough (~250 MiB/s) that the kill lands mid-copy.
    const source = new FaultySource([{ name: 'rate', params: { rate: `${2000 * 1000 * 1000}` } }]);
    let killed = false;
    const { result, checkpoints, file } = await copyThrough(source, 'killed', (c) => {
      if (!killed && c.bytesDone >= 128 * MiB) {
        killed = true;
        source.kill();
      }
    });
    expect(killed).toBe(true);
    expect(source.restarts).toBe(1);
    expect(result.reconnects).toBeGreaterThanOrEqual(1);
    expect(result.readRetries).toBeGreaterThan(0);
    expect(await sha256File(file)).toBe(sourceSha);
    expect(nonDecreasing(checkpoints)).toBe(true);
  }, 120_000);
});
