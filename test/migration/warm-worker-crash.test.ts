/**
 * The activity worker of a warm migration is killed with SIGKILL twice: once while the migration idles in Ready,
 * once in the middle of an incremental sync. Replacement workers carry on (the interrupted sync resumes from its
 * heartbeat), and after cutover the target equals the source.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { readWorkflowRecord } from '../../api/workflow-history';
import type { SyncDiskProgress } from '../../activities';
import { sha256File } from '../../tools/disk-image';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { cutoverUpdate } from '../../workflows/warm-migration-state';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';
import { spawnWorker, type WorkerProcess } from '../harness/worker-process';

const MiB = 1024 * 1024;
const DISK = 64 * MiB;

describe('warm migration survives SIGKILLed workers', () => {
  let env: MigrationEnv;
  const workers: WorkerProcess[] = [];
  const startActivityWorker = () => {
    const w = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    // nbdkit's rate filter (bits/s) makes a big sync last long enough to kill the worker in the middle of it.
    env = await createMigrationEnv(
      'warm-crash',
      { vms: [{ name: 'db02', guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: DISK / MiB }], nics: [] }] },
      { filters: [{ name: 'rate', params: { rate: `${32 * 1000 * 1000}` } }], diskImages: { db02: DISK } },
    );
    await env.startWorker('workflows');
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) await w.kill();
    await env?.close();
  });

  it('carries on after a kill while Ready and a kill mid-sync, and ends byte-identical', async () => {
    const id = 'mig-warm-crash';
    const disk = liveDiskFile(env, 0);
    const random = seededRandom(4242);
    let worker = startActivityWorker();
    const handle = await startWarmMigration(env, { id, vm: 'db02', warm: { syncIntervalSeconds: 2 }, heartbeatTimeoutSeconds: 4 });

    // 1. Killed while Ready (between syncs): the next syncs run on the replacement.
    let state = await waitForWarmState(env, id, (s) => s.stage === 'Ready' && (s.totals?.syncs ?? 0) >= 1, 120_000);
    await worker.kill('SIGKILL');
    await randomWrites(disk, DISK, random, 16);
    worker = startActivityWorker();
    state = await waitForWarmState(env, id, (s) => s.stage === 'Ready' && s.totals!.syncs >= 3, 120_000);
    expect(state.totals!.failedSyncs).toBe(0);

    // 2. Killed in the middle of a sync: a large change makes the sync take seconds at the throttled rate.
    const fh = await open(disk, 'r+');
    await fh.write(randomBytes(48 * MiB), 0, 48 * MiB, 8 * MiB);
    await fh.close();
    let killedAt: SyncDiskProgress | undefined;
    const deadline = Date.now() + 90_000;
    while (!killedAt) {
      if (Date.now() > deadline) throw new Error(`no syncDisk heartbeat with progress; worker output:\n${worker.output()}`);
      const rec = await readWorkflowRecord(env.client, id);
      const pending = rec.activities.filter((a) => a.type === 'syncDisk' && a.pending).at(-1);
      const hb = pending?.pending?.heartbeat as SyncDiskProgress | undefined;
      if (hb && hb.mode === "incremental" && hb.bytesDone > 0 && hb.bytesRead > 0) {
        killedAt = hb;
        await worker.kill('SIGKILL');
      } else await new Promise((r) => setTimeout(r, 100));
    }
    const syncsBefore = (await waitForWarmState(env, id, () => true)).totals!.syncs;
    worker = startActivityWorker();
    state = await waitForWarmState(env, id, (s) => s.totals!.syncs > syncsBefore, 120_000);
    expect(state.totals!.failedSyncs).toBe(0);

    // The interrupted sync finished on a later attempt, resuming at (or past) the watermark seen before the kill.
    const rec = await readWorkflowRecord(env.client, id);
    const resumed = rec.activities.filter((a) => a.type === 'syncDisk' && a.outcome === 'completed').map((a) => a.result as { attempt: number; resumedFrom: number; mode: string });
    const retried = resumed.find((r) => r.attempt >= 2);
    expect(retried).toBeDefined();
    expect(retried!.mode).toBe('incremental');
    expect(retried!.resumedFrom).toBeGreaterThan(0);
    expect(retried!.resumedFrom).toBeGreaterThanOrEqual(killedAt.bytesDone);

    await randomWrites(disk, DISK, random, 16);
    const accepted = await handle.executeUpdate(cutoverUpdate, { args: [{ actor: 'crash-test' }] });
    expect(accepted.actor).toBe('crash-test');
    const result = (await handle.result()) as WarmMigrationResult;
    expect(result.shutdown.method).toBe('guest-shutdown');
    expect(await env.powerState('db02')).toBe('poweredOff');
    expect(await sha256File(env.target.volumePath('proj-warm', `${id}-disk0`))).toBe(await sha256File(disk));
  }, 300_000);
});
