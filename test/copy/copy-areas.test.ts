/** copyAreas against a real NBD source (nbdkit's file plugin) and a real local volume. */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { complementAreas, copyAreas, normaliseAreas, type ByteArea } from '../../copy/copy-areas';
import { VerificationError } from '../../copy/verification-error';
import { NbdClient } from '../../nbd/nbd-client';
import { startNbdkit, type NbdkitProcess } from '../../nbd/nbdkit';
import { MiB, sha256 } from './helpers/sparse-disk';
import { VolumeFixture } from './helpers/volume-fixture';
import { CorruptingTarget } from './helpers/wrapped-targets';

const SIZE = 32 * MiB;
let fx: VolumeFixture;
let sourceFile: string;
let nbdkit: NbdkitProcess | undefined;
let client: NbdClient | undefined;

beforeEach(async () => {
  fx = new VolumeFixture();
  sourceFile = path.join(fx.dir, 'source.img');
  const h = await fs.open(sourceFile, 'w');
  await h.truncate(SIZE);
  for (let off = 0; off < SIZE; off += 4 * MiB) await h.write(randomBytes(MiB + 4096), 0, MiB + 4096, off + 64 * 1024);
  await h.close();
  nbdkit = await startNbdkit({ plugin: 'file', params: { file: sourceFile }, readOnly: true });
  client = await NbdClient.connect({ socketPath: nbdkit.socketPath });
});
afterEach(async () => {
  await client?.close();
  await nbdkit?.stop();
  await fx.cleanup();
});

const AREAS: ByteArea[] = [
  { start: 64 * 1024, length: MiB + 4096 },
  { start: 8 * MiB, length: 3 * MiB }, // larger than one piece, crosses data and zeros
  { start: 20 * MiB + 512 * 1024, length: 64 * 1024 },
];

const log = () => path.join(fx.dir, 'work', 'areas.digests');

test('copies exactly the areas, at the same offsets, and nothing else', async () => {
  const { target } = await fx.volume(SIZE);
  // Not fresh, as for an incremental sync: the source's holes inside the areas are written as zeros.
  const result = await copyAreas([client!], target, { areas: AREAS, freshTarget: false, chunkSize: MiB, digestLogPath: log() });
  const source = await fs.readFile(sourceFile);
  const written = await fx.readVolume();
  for (const a of AREAS) expect(sha256(written.subarray(a.start, a.start + a.length))).toBe(sha256(source.subarray(a.start, a.start + a.length)));
  for (const gap of complementAreas(AREAS, SIZE)) expect(written.subarray(gap.start, gap.start + gap.length).every((b) => b === 0)).toBe(true);
  const areaBytes = AREAS.reduce((s, a) => s + a.length, 0);
  // The holes (per the source's block status) inside the second area were not read.
  const holeBytes = 3 * MiB - (MiB + 4096);
  expect(result).toMatchObject({ areaBytes, bytesRead: areaBytes - holeBytes, bytesWritten: areaBytes, bytesZeroed: holeBytes, areas: 3 });
  expect(result.verification).toMatchObject({ algorithm: 'blake3-tree', match: true, chunks: 6 });
  expect(result.firstByteAt).toBeGreaterThan(0);
});

test('zeroOutside turns a volume holding stale data into an exact copy of the source', async () => {
  const { target, file } = await fx.volume(SIZE);
  // Stale data everywhere the source is about to be empty (as after a CBT reset onto a synced volume).
  await fs.writeFile(file, randomBytes(SIZE));
  const source = await fs.readFile(sourceFile);
  const allocated: ByteArea[] = [];
  for (let off = 0; off < SIZE; off += 4 * MiB) allocated.push({ start: off + 64 * 1024, length: MiB + 4096 });
  const result = await copyAreas([client!], target, { areas: allocated, zeroOutside: true, freshTarget: false, chunkSize: MiB, digestLogPath: log() });
  expect(sha256(await fx.readVolume())).toBe(sha256(source));
  expect(result.bytesZeroed).toBe(SIZE - result.areaBytes);
});

test('a stopped copy resumes from its checkpoint without re-reading what was durable', async () => {
  const { target } = await fx.volume(SIZE);
  const all: ByteArea[] = [{ start: 0, length: SIZE }];
  const abort = new AbortController();
  let resumeAt = 0;
  await expect(
    copyAreas([client!], target, {
      areas: all,
      digestLogPath: log(),
      chunkSize: MiB,
      inFlight: 2,
      checkpointIntervalMs: 0,
      flushBytes: MiB,
      signal: abort.signal,
      onCheckpoint: (c: { bytesDone: number }) => {
        resumeAt = c.bytesDone;
        if (c.bytesDone >= 10 * MiB) abort.abort(new Error('worker stopped'));
      },
    }),
  ).rejects.toThrow('worker stopped');
  expect(resumeAt).toBeGreaterThanOrEqual(10 * MiB);
  const second = await copyAreas([client!], target, { areas: all, digestLogPath: log(), chunkSize: MiB, resumeFrom: resumeAt });
  // Only the allocated bytes above the watermark are read again (holes come from the source's block status).
  const source = await fs.readFile(sourceFile);
  let allocatedAbove = 0;
  for (let off = 0; off < SIZE; off += 4 * MiB) allocatedAbove += Math.max(0, off + 64 * 1024 + MiB + 4096 - Math.max(resumeAt, off + 64 * 1024));
  expect(second.resumedFrom).toBe(resumeAt);
  expect(second.bytesRead).toBe(allocatedAbove);
  expect(second.verification.match).toBe(true);
  expect(second.verification.chunksReadBack).toBe(SIZE / MiB - resumeAt / MiB);
  expect(sha256(await fx.readVolume())).toBe(sha256(source));
});

test('a corrupting storage path fails verification with the offset', async () => {
  const { target } = await fx.volume(SIZE);
  const bad = new CorruptingTarget(target, 8 * MiB + 64 * 1024 + 100); // inside the data of the second area
  const err = await copyAreas([client!], bad, { areas: AREAS, chunkSize: MiB, digestLogPath: log() }).catch((e) => e);
  expect(err).toBeInstanceOf(VerificationError);
  expect(err.message).toContain('offset 8388608');
});

test('areas are merged and checked against the disk', () => {
  expect(normaliseAreas([{ start: 10, length: 5 }, { start: 0, length: 12 }, { start: 15, length: 1 }, { start: 30, length: 0 }], 100)).toEqual([
    { start: 0, length: 16 },
  ]);
  expect(() => normaliseAreas([{ start: 90, length: 20 }], 100)).toThrow('area [90, 110) is outside the disk (size 100)');
  expect(complementAreas([{ start: 10, length: 10 }], 30)).toEqual([
    { start: 0, length: 10 },
    { start: 20, length: 10 },
  ]);
});
