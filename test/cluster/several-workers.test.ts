/**
 * Several worker processes on one task queue of a real Temporal cluster, as users run them next to their vCenters
 * and clouds. Volumes any worker can reach: the worker copying a disk is SIGKILLed and another takes the copy over
 * from the durable watermark. Volumes that are files on one worker's host: every step touching them runs on that
 * host's own task queue, waits there while its worker restarts, and fails with a reason if the host never returns.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { ColdMigrationInput } from '../../shared/migration-input';
import { hostTaskQueue } from '../../shared/task-queues';
import { sha256File } from '../../tools/disk-image';
import type { ColdMigrationResult } from '../../workflows/cold-migration';
import path from 'node:path';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { recordRunHistories } from '../harness/record-histories';
import { waitForPollers } from '../harness/task-queue-pollers';
import { useOwnCluster } from '../harness/temporal-cluster';
import { spawnWorker, type WorkerProcess } from '../harness/worker-process';

const MiB = 1024 * 1024;
const DISK = 192 * MiB;
const HOSTS = ['host-a', 'host-b', 'host-c'];

useOwnCluster('workers');

const vm = (name: string) => ({
  name,
  guestId: 'debian11_64Guest',
  firmware: 'bios' as const,
  numCPUs: 1,
  memoryMB: 1024,
  powerState: 'poweredOff' as const,
  disks: [{ capacityMiB: DISK / MiB }],
  nics: [],
});

const coldInput = (id: string, vmName: string): ColdMigrationInput => ({
  migrationId: id,
  sourceId: 'sim',
  vm: { name: vmName },
  target: { project: 'p-workers', flavor: 'm1.small', volumeType: 'standard', networks: [] },
  guest: { convert: 'skip' },
});

/** Who runs the pending exportDisk and its durable watermark, once it has one. */
async function runningCopy(env: MigrationEnv, id: string): Promise<{ identity: string; bytesDone: number } | undefined> {
  const { raw } = await env.client.workflow.getHandle(id).describe();
  const pending = raw.pendingActivities?.find((a) => a.activityType?.name === 'exportDisk' && a.lastWorkerIdentity);
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (!pending || !payload) return undefined;
  return { identity: pending.lastWorkerIdentity!, bytesDone: (defaultPayloadConverter.fromPayload(payload) as { bytesDone: number }).bytesDone };
}

async function waitForCopyPast(env: MigrationEnv, id: string, bytes: number): Promise<{ identity: string; bytesDone: number }> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const copy = await runningCopy(env, id);
    if (copy && copy.bytesDone >= bytes) return copy;
    if (Date.now() > deadline) throw new Error(`migration ${id}: no copy past ${bytes} bytes (last: ${JSON.stringify(copy)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Each activity that ran: its type, the task queue it was scheduled on and the identity that ran its last attempt. */
async function activitiesRun(env: MigrationEnv, id: string): Promise<Array<{ type: string; taskQueue: string; identity?: string }>> {
  const events = (await env.client.workflow.getHandle(id).fetchHistory()).events ?? [];
  const scheduled = new Map<string, { type: string; taskQueue: string; identity?: string }>();
  for (const e of events as temporal.api.history.v1.IHistoryEvent[]) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { type: s.activityType!.name!, taskQueue: s.taskQueue!.name! });
    const started = e.activityTaskStartedEventAttributes;
    if (started) scheduled.get(String(started.scheduledEventId))!.identity = started.identity ?? undefined;
  }
  return [...scheduled.values()];
}

const identityOf = (w: WorkerProcess, host: string) => `${w.child.pid}@${host}`;

async function startWorkers(env: MigrationEnv, hosts: string[]): Promise<Map<string, WorkerProcess>> {
  const started = new Map(hosts.map((host) => [host, spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue, hostId: host })]));
  await waitForPollers(env.client, env.taskQueue, [...started].map(([host, w]) => identityOf(w, host)));
  return started;
}

describe('three workers on one task queue, volumes any worker can reach', () => {
  let env: MigrationEnv;
  let workers: Map<string, WorkerProcess>;

  beforeAll(async () => {
    // 20 MB/s: the copy takes about ten seconds, time to kill the worker running it.
    env = await createMigrationEnv('workers-shared', { vms: [vm('app01')] }, {
      filters: [{ name: 'rate', params: { rate: `${160 * 1000 * 1000}` } }],
      diskImages: { app01: DISK },
      sharedStorage: true,
    });
    await env.startWorker('workflows');
    workers = await startWorkers(env, HOSTS);
  }, 180_000);

  afterAll(async () => {
    for (const w of workers?.values() ?? []) await w.kill();
    await env?.close();
  });

  it('another worker takes over the copy of a SIGKILLed one from the durable watermark', async () => {
    const input = coldInput('mig-workers-shared', 'app01');
    const handle = await env.client.workflow.start('coldMigration', { workflowId: input.migrationId, taskQueue: env.taskQueue, args: [input, { heartbeatTimeoutSeconds: 4 }] });
    const killed = await waitForCopyPast(env, input.migrationId, 32 * MiB);
    const [victimHost, victim] = [...workers].find(([host, w]) => identityOf(w, host) === killed.identity)!;
    await victim.kill('SIGKILL');

    const result = (await handle.result()) as ColdMigrationResult;
    const disk = result.disks[0];
    expect(disk.attempt).toBeGreaterThanOrEqual(2);
    expect(disk.resumedFrom).toBeGreaterThanOrEqual(killed.bytesDone);
    expect(disk.bytesRead).toBe(DISK - disk.resumedFrom);
    expect(await sha256File(env.target.volumePath('p-workers', `${input.migrationId}-disk0`))).toBe(await sha256File(env.images.app01));
    // Nothing was pinned to a host: the copy stayed on the shared queue and a survivor finished it.
    const copies = (await activitiesRun(env, input.migrationId)).filter((a) => a.type === 'exportDisk');
    expect(copies).toEqual([expect.objectContaining({ taskQueue: env.taskQueue })]);
    const survivors = [...workers].filter(([host]) => host !== victimHost).map(([host, w]) => identityOf(w, host));
    expect(survivors).toContain(copies[0].identity);
    process.stdout.write(`several workers: killed ${killed.identity} at ${killed.bytesDone / MiB} MiB; ${copies[0].identity} resumed from ${disk.resumedFrom / MiB} MiB\n`);
  }, 180_000);
});

describe('three workers, volumes that are files on one worker host', () => {
  let env: MigrationEnv;
  let workers: Map<string, WorkerProcess>;
  const restarted: WorkerProcess[] = [];

  beforeAll(async () => {
    env = await createMigrationEnv('workers-host', { vms: [vm('db01'), vm('db02')] }, {
      filters: [{ name: 'rate', params: { rate: `${160 * 1000 * 1000}` } }],
      diskImages: { db01: DISK, db02: DISK },
    });
    await env.startWorker('workflows');
    workers = await startWorkers(env, HOSTS);
  }, 180_000);

  afterAll(async () => {
    for (const w of [...(workers?.values() ?? []), ...restarted]) await w.kill();
    await env?.close();
  });

  it('keeps the volume work on its host, which picks the copy up again after its worker restarts', async () => {
    const input = coldInput('mig-workers-host', 'db01');
    const handle = await env.client.workflow.start('coldMigration', { workflowId: input.migrationId, taskQueue: env.taskQueue, args: [input, { heartbeatTimeoutSeconds: 4 }] });
    const killed = await waitForCopyPast(env, input.migrationId, 32 * MiB);
    const host = killed.identity.split('@')[1];
    await workers.get(host)!.kill('SIGKILL');
    // The retry waits on the host's own queue; the other hosts' workers do not take it.
    await new Promise((r) => setTimeout(r, 6000));
    expect((await env.client.workflow.getHandle(input.migrationId).describe()).status.name).toBe('RUNNING');
    const again = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue, hostId: host });
    restarted.push(again);

    const result = (await handle.result()) as ColdMigrationResult;
    const disk = result.disks[0];
    expect(disk.attempt).toBeGreaterThanOrEqual(2);
    expect(disk.resumedFrom).toBeGreaterThanOrEqual(killed.bytesDone);
    expect(disk.bytesRead).toBe(DISK - disk.resumedFrom);
    expect(await sha256File(env.target.volumePath('p-workers', `${input.migrationId}-disk0`))).toBe(await sha256File(env.images.db01));

    const run = await activitiesRun(env, input.migrationId);
    const onHost = run.filter((a) => ['exportDisk', 'guestFix', 'finalize'].includes(a.type));
    expect(onHost.map((a) => a.type).sort()).toEqual(['exportDisk', 'finalize', 'guestFix']);
    for (const a of onHost) {
      expect(a.taskQueue).toBe(hostTaskQueue(env.taskQueue, host));
      expect(a.identity?.endsWith(`@${host}`)).toBe(true);
    }
    // The copy's last attempt ran on the restarted worker.
    expect(onHost.find((a) => a.type === 'exportDisk')!.identity).toBe(identityOf(again, host));
    // Work that touches no volume stays on the shared queue.
    expect(run.find((a) => a.type === 'preflight')!.taskQueue).toBe(env.taskQueue);
    workers.set(host, again);
    // Re-record the replay test's histories with VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, input.migrationId, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-worker-host-v1'));
  }, 180_000);

  it('fails, naming the host and what to do, when the host does not come back', async () => {
    const input = coldInput('mig-workers-gone', 'db02');
    const handle = await env.client.workflow.start('coldMigration', {
      workflowId: input.migrationId,
      taskQueue: env.taskQueue,
      args: [input, { heartbeatTimeoutSeconds: 4, hostWaitSeconds: 5 }],
    });
    const killed = await waitForCopyPast(env, input.migrationId, 32 * MiB);
    const host = killed.identity.split('@')[1];
    await workers.get(host)!.kill('SIGKILL');
    await expect(handle.result()).rejects.toMatchObject({
      cause: expect.objectContaining({
        message: expect.stringContaining(
          `failed in stage WriteVolume: no worker on host ${host} took the migration's volume work within 5 s; its volumes are on that host. ` +
            `Start the worker there again (VMIGRATE_HOST_ID=${host}, task queue ${hostTaskQueue(env.taskQueue, host)}), then retry the migration`,
        ),
      }),
    });
  }, 180_000);
});
