import { promises as fs } from 'node:fs';
import { copyDisk } from '../../copy/copy-disk';
import type { CopyCheckpoint } from '../../copy/copy-options';
import { ScriptedSource } from './helpers/scripted-source';
import { allocatedAbove, MiB, sha256, sparseDisk } from './helpers/sparse-disk';
import { RecordingTarget } from './helpers/wrapped-targets';
import { VolumeFixture } from './helpers/volume-fixture';
import { referenceDiskDigest } from './helpers/reference-digest';

let fx: VolumeFixture;
beforeEach(() => {
  fx = new VolumeFixture();
});
afterEach(() => fx.cleanup());

/**
 * A first attempt whose source fails after 30 MiB, checkpointing after every chunk; returns its last watermark.
 * One chunk in flight, otherwise every read up to the failure can be issued before any chunk (and checkpoint) ends.
 */
async function failedFirstAttempt(disk: ReturnType<typeof scatteredDisk>, target: Parameters<typeof copyDisk>[1]): Promise<number> {
  const checkpoints: CopyCheckpoint[] = [];
  await expect(
    copyDisk([new ScriptedSource(disk.content, disk.allocation, { failAfterBytes: 30 * MiB })], target, {
      digestLogPath: fx.digestLogPath,
      inFlight: 1,
      checkpointBytes: 1,
      readRetry: { tries: 1 },
      onCheckpoint: (c) => void checkpoints.push(c),
    }),
  ).rejects.toThrow();
  return checkpoints[checkpoints.length - 1].bytesDone;
}

/** 64 MiB, data scattered over the whole disk with holes between. */
function scatteredDisk() {
  const ranges: Array<[number, number]> = [];
  for (let off = 0; off + 3 * MiB <= 64 * MiB; off += 3 * MiB) ranges.push([off + 512 * 1024, 2 * MiB]);
  return sparseDisk(64 * MiB, ranges);
}

describe('copyDisk checkpoints and resume', () => {
  test('publishes only flushed, contiguous watermarks', async () => {
    const disk = scatteredDisk();
    // The last quarter is read only after a first checkpoint (or 20 s, and then the count below fails): a mid-copy
    // checkpoint must exist however the machine schedules the copy and its verification.
    let firstCheckpoint!: () => void;
    const checkpointed = new Promise<void>((resolve) => {
      firstCheckpoint = resolve;
      setTimeout(resolve, 20_000).unref();
    });
    const source = new ScriptedSource(disk.content, disk.allocation, { maxDelayMs: 4, holdReadsFrom: { offset: 48 * MiB, until: checkpointed } });
    const { target: inner } = await fx.volume(disk.content.length);
    const target = new RecordingTarget(inner);
    const checkpoints: CopyCheckpoint[] = [];
    const violations: string[] = [];

    await copyDisk([source], target, {
      digestLogPath: fx.digestLogPath,
      checkpointBytes: 6 * MiB,
      onCheckpoint: async (c) => {
        checkpoints.push(c);
        firstCheckpoint();
        // Every write below the watermark must have completed before a flush that has returned...
        target.completed.forEach((w, i) => {
          if (w.offset < c.bytesDone && i >= target.durableCount) violations.push(`write at ${w.offset} not flushed before ${c.bytesDone}`);
        });
        // ...and everything below it must already be the source's bytes.
        const onDisk = (await fx.readVolume()).subarray(0, c.bytesDone);
        if (!onDisk.equals(disk.content.subarray(0, c.bytesDone))) violations.push(`content below ${c.bytesDone} incomplete`);
      },
    });

    expect(violations).toEqual([]);
    expect(checkpoints.length).toBeGreaterThanOrEqual(2); // one mid-copy at least, plus the final one
    checkpoints.forEach((c, i) => {
      expect(c.bytesDone % (2 * MiB) === 0 || c.bytesDone === disk.content.length).toBe(true);
      if (i > 0) expect(c.bytesDone).toBeGreaterThan(checkpoints[i - 1].bytesDone);
    });
    expect(checkpoints[checkpoints.length - 1]).toMatchObject({ bytesDone: 64 * MiB, bytesTotal: 64 * MiB, bytesRead: disk.allocatedBytes });
  });

  test('resumes after a source failure without re-reading below the watermark', async () => {
    const disk = scatteredDisk();
    const { target } = await fx.volume(disk.content.length);
    const checkpoints: CopyCheckpoint[] = [];
    const failing = new ScriptedSource(disk.content, disk.allocation, { failAfterBytes: 24 * MiB, maxDelayMs: 2 });
    await expect(
      copyDisk([failing], target, { digestLogPath: fx.digestLogPath, inFlight: 4, checkpointBytes: 4 * MiB, onCheckpoint: (c) => void checkpoints.push(c) }),
    ).rejects.toThrow(/injected source failure/);
    const watermark = checkpoints[checkpoints.length - 1].bytesDone;
    expect(watermark).toBeGreaterThan(0);
    expect(watermark).toBeLessThan(64 * MiB);

    const fresh = new ScriptedSource(disk.content, disk.allocation);
    const result = await copyDisk([fresh], target, { digestLogPath: fx.digestLogPath, resumeFrom: watermark });

    expect(result.resumedFrom).toBe(watermark);
    expect(result.bytesRead).toBe(allocatedAbove(disk.allocation, watermark));
    expect(fresh.reads.every((r) => r.offset >= watermark)).toBe(true);
    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
    // The verification still covers the whole disk, using the first attempt's digests for the part below.
    expect(result.verification.match).toBe(true);
    expect(result.verification.source).toBe(referenceDiskDigest(disk.content, 2 * MiB));
  });

  test('an abort rejects promptly with the reason, and the copy resumes from the last checkpoint', async () => {
    const disk = scatteredDisk();
    const { target } = await fx.volume(disk.content.length);
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const checkpoints: CopyCheckpoint[] = [];
    const slow = new ScriptedSource(disk.content, disk.allocation, {
      maxDelayMs: 20,
      onBytesRead: (total) => total >= 20 * MiB && controller.abort(reason),
    });
    const started = Date.now();
    await expect(
      copyDisk([slow], target, {
        digestLogPath: fx.digestLogPath,
        signal: controller.signal,
        checkpointBytes: 4 * MiB,
        onCheckpoint: (c) => void checkpoints.push(c),
      }),
    ).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(5000);
    const readsAtAbort = slow.reads.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(slow.reads.length).toBe(readsAtAbort); // nothing keeps reading after the rejection

    const watermark = checkpoints.length ? checkpoints[checkpoints.length - 1].bytesDone : 0;
    const fresh = new ScriptedSource(disk.content, disk.allocation);
    const result = await copyDisk([fresh], target, { digestLogPath: fx.digestLogPath, resumeFrom: watermark });
    expect(result.bytesRead).toBe(allocatedAbove(disk.allocation, watermark));
    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
  });

  test('an already aborted signal rejects before any read', async () => {
    const disk = scatteredDisk();
    const { target } = await fx.volume(disk.content.length);
    const source = new ScriptedSource(disk.content, disk.allocation);
    const reason = new Error('too late');
    await expect(copyDisk([source], target, { digestLogPath: fx.digestLogPath, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(source.reads).toHaveLength(0);
  });

  test('rounds an off-grid resume point down to the chunk grid', async () => {
    const disk = scatteredDisk();
    const { target } = await fx.volume(disk.content.length);
    const watermark = await failedFirstAttempt(disk, target);
    const fresh = new ScriptedSource(disk.content, disk.allocation);
    const result = await copyDisk([fresh], target, { digestLogPath: fx.digestLogPath, resumeFrom: watermark + 12345 });
    expect(result.resumedFrom).toBe(watermark);
    expect(sha256(await fx.readVolume())).toBe(sha256(disk.content));
  });

  test('without the digest log (or with another chunk size) a resume starts over instead of trusting it', async () => {
    const disk = scatteredDisk();
    const { target } = await fx.volume(disk.content.length);
    const watermark = await failedFirstAttempt(disk, target);
    expect(watermark).toBeGreaterThan(0);

    const otherGrid = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], target, {
      digestLogPath: fx.digestLogPath,
      resumeFrom: watermark,
      chunkSize: 4 * MiB,
    });
    expect(otherGrid.resumedFrom).toBe(0);
    expect(otherGrid.bytesRead).toBe(disk.allocatedBytes);

    await fs.rm(fx.digestLogPath);
    const lostLog = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], target, {
      digestLogPath: fx.digestLogPath,
      resumeFrom: watermark,
      chunkSize: 4 * MiB,
    });
    expect(lostLog.resumedFrom).toBe(0);
    expect(lostLog.verification.match).toBe(true);
  });

  test('resuming at the end reads nothing and reports the verification the earlier attempt proved', async () => {
    const disk = scatteredDisk();
    const { target } = await fx.volume(disk.content.length);
    const first = await copyDisk([new ScriptedSource(disk.content, disk.allocation)], target, { digestLogPath: fx.digestLogPath });
    const again = new ScriptedSource(disk.content, disk.allocation);
    const second = await copyDisk([again], target, { digestLogPath: fx.digestLogPath, resumeFrom: disk.content.length });
    expect(second.bytesRead).toBe(0);
    expect(again.reads).toHaveLength(0);
    expect(second.resumedFrom).toBe(disk.content.length);
    expect(second.verification).toEqual({ ...first.verification, chunksReadBack: 0 });
    expect(first.verification.chunksReadBack).toBe(first.verification.chunks);
  });
});
