/**
 * An upgrade as operators do it: a warm migration sits Ready, syncing while its guest writes, and every Temporal
 * service and then every vmigrate worker is restarted one at a time. Then the cutover. The target must equal the
 * source, and no sync may be lost: every sync is in history, numbered without a gap, and the totals add up.
 */
import { readWorkflowRecord } from '../../api/workflow-history';
import { sha256File } from '../../tools/disk-image';
import type { TemporalService } from '../../tools/temporal-cluster/cluster-versions';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { cutoverUpdate } from '../../workflows/warm-migration-state';
import { startGuestWriter } from '../harness/guest-writer';
import path from 'node:path';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { recordRunHistories } from '../harness/record-histories';
import { waitForPollers, type PollerKind } from '../harness/task-queue-pollers';
import { useOwnCluster } from '../harness/temporal-cluster';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';
import { spawnWorker, type WorkerProcess } from '../harness/worker-process';
import { whereItIs } from '../harness/workflow-whereabouts';

const MiB = 1024 * 1024;
const DISK = 64 * MiB;
const SERVICES: TemporalService[] = ['history', 'matching', 'frontend', 'worker'];

const lab = useOwnCluster('rolling');

/** The deployment: one workflow worker and two activity workers on their own hosts. */
const WORKERS: Array<{ host: string; role: 'workflows' | 'activities'; polls: PollerKind }> = [
  { host: 'orchestrator', role: 'workflows', polls: 'workflow' },
  { host: 'host-a', role: 'activities', polls: 'activity' },
  { host: 'host-b', role: 'activities', polls: 'activity' },
];

describe('a Ready warm migration through a rolling restart of the whole cluster and every worker', () => {
  let env: MigrationEnv;
  const running = new Map<string, WorkerProcess>();

  const start = async (w: (typeof WORKERS)[number]) => {
    const proc = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue, role: w.role, hostId: w.host });
    running.set(w.host, proc);
    await waitForPollers(env.client, env.taskQueue, [`${proc.child.pid}@${w.host}`], w.polls);
  };

  beforeAll(async () => {
    env = await createMigrationEnv('rolling', {
      vms: [{ name: 'web01', guestId: 'debian11_64Guest', firmware: 'bios', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: DISK / MiB }], nics: [] }],
    }, { diskImages: { web01: DISK } });
    for (const w of WORKERS) await start(w);
  }, 180_000);

  afterAll(async () => {
    for (const w of running.values()) await w.kill();
    await env?.close();
  });

  it('cuts over byte-identical with every sync accounted for', async () => {
    const id = 'mig-rolling';
    const handle = await startWarmMigration(env, { id, vm: 'web01', project: 'p-rolling', warm: { syncIntervalSeconds: 2, syncsPerRun: 4 }, heartbeatTimeoutSeconds: 10 });
    await waitForWarmState(env, id, (s) => s.stage === 'Ready', 120_000);
    const live = liveDiskFile(env, 0);
    const writer = startGuestWriter(live, DISK, 4242, { burst: 2, pauseMs: 200, maxLength: 64 * 1024 });
    /** One more sync completed after a restart: the migration really carries on, not just survives. */
    const anotherSync = async (what: string) => {
      try {
        const before = (await waitForWarmState(env, id, () => true, 60_000)).totals!.syncs;
        await waitForWarmState(env, id, (s) => s.totals!.syncs > before, 90_000);
      } catch (err) {
        throw new Error(`no sync after restarting ${what}: ${(err as Error).message}; ${await whereItIs(env, id).catch((e: Error) => `(not described: ${e.message})`)}`);
      }
    };
    try {
      for (const service of SERVICES) {
        await lab.cluster().restart(service);
        await anotherSync(`the ${service} service`);
      }
      for (const w of WORKERS) {
        await running.get(w.host)!.kill('SIGTERM');
        await start(w);
        await anotherSync(`the worker on ${w.host}`);
      }
    } finally {
      await writer.stop();
    }
    expect(writer.writes).toBeGreaterThan(10);

    await handle.executeUpdate(cutoverUpdate, { args: [{ actor: 'rolling-test' }] });
    const result = (await handle.result()) as WarmMigrationResult;
    expect(await sha256File(env.target.volumePath('p-rolling', `${id}-disk0`))).toBe(await sha256File(live));

    // No sync lost: one snapshot and one disk sync per sync, numbered 1..n without a gap, across every run.
    const record = await readWorkflowRecord(env.client, id);
    const completed = (type: string) => record.activities.filter((a) => a.type === type && a.outcome === 'completed');
    const snapshots = completed('createSyncSnapshot').map((a) => (a.input as { sync: number }).sync);
    const diskSyncs = completed('syncDisk').map((a) => a.result as { areaBytes: number });
    expect(result.totals.failedSyncs).toBe(0);
    expect(result.totals.syncs).toBeGreaterThanOrEqual(1 + SERVICES.length + WORKERS.length + 1);
    expect(snapshots.sort((a, b) => a - b)).toEqual(Array.from({ length: result.totals.syncs }, (_, i) => i + 1));
    expect(diskSyncs).toHaveLength(result.totals.syncs);
    expect(diskSyncs.reduce((sum, s) => sum + s.areaBytes, 0)).toBe(result.totals.changedBytes);
    expect(result.finalSync.n).toBe(result.totals.syncs);
    // Every step that touched the volumes ran on the host that holds them, across all runs and restarts.
    const host = (record.activities.find((a) => a.type === 'claimWorkerHost')!.result as { hostId: string; taskQueue: string });
    expect(['host-a', 'host-b']).toContain(host.hostId);
    // Re-record the replay test's histories with VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'warm-migration-worker-host-v1'));
    process.stdout.write(`rolling restart: ${result.totals.syncs} syncs ${result.totals.changedBytes} changed bytes, ${writer.writes} guest writes\n`);
  }, 600_000);
});
