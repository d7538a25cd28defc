/**
 * Faults in each part of a real Temporal cluster (PostgreSQL, history, matching, frontend as separate processes),
 * each landing while a cold migration copies its disk and a warm migration runs its full sync. The migrations must
 * carry on by themselves — the worker and the clients reconnect, lost heartbeats and completions are recovered by
 * Temporal's timeouts and our resume watermark — and end Completed with the target byte-identical to the source.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { readWorkflowRecord } from '../../api/workflow-history';
import type { ColdMigrationInput } from '../../shared/migration-input';
import { sha256File } from '../../tools/disk-image';
import type { TemporalService } from '../../tools/temporal-cluster/cluster-versions';
import type { ColdMigrationResult } from '../../workflows/cold-migration';
import { cutoverUpdate } from '../../workflows/warm-migration-state';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { useOwnCluster } from '../harness/temporal-cluster';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';
import { whereItIs } from '../harness/workflow-whereabouts';

const MiB = 1024 * 1024;
const DISK = 128 * MiB;
type Fault = TemporalService | 'postgres';
const FAULTS: Fault[] = ['history', 'matching', 'frontend', 'postgres'];

const lab = useOwnCluster('faults');

const vm = (name: string, powerState: 'poweredOn' | 'poweredOff') => ({
  name,
  guestId: 'debian11_64Guest',
  firmware: 'bios' as const,
  numCPUs: 1,
  memoryMB: 1024,
  powerState,
  disks: [{ capacityMiB: DISK / MiB }],
  nics: [],
});

/** The copy activity while a worker runs it (its last heartbeat's watermark, if one reached the server yet). */
async function runningCopy(env: MigrationEnv, id: string, type: 'exportDisk' | 'syncDisk'): Promise<{ bytesDone?: number } | undefined> {
  // describe() only: a warm migration's whole history is too slow to read this often.
  const { raw } = await env.client.workflow.getHandle(id).describe();
  const pending = raw.pendingActivities?.find((a) => a.activityType?.name === type && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED);
  if (!pending) return undefined;
  const payload = pending.heartbeatDetails?.payloads?.[0];
  return { bytesDone: payload ? (defaultPayloadConverter.fromPayload(payload) as { bytesDone?: number }).bytesDone : undefined };
}

/** When the migration's first copy activity of `type` was scheduled and when it ended (from history). */
async function copySpan(env: MigrationEnv, id: string, type: 'exportDisk' | 'syncDisk'): Promise<{ from: number; to: number }> {
  const copy = (await readWorkflowRecord(env.client, id)).activities.find((a) => a.type === type)!;
  return { from: copy.scheduledAt, to: copy.endedAt! };
}

async function inject(fault: Fault): Promise<void> {
  const cluster = lab.cluster();
  if (fault === 'postgres') return cluster.postgres.restart();
  await cluster.kill(fault);
  // Down long enough that clients, workers and the other services see it gone, and heartbeats go unanswered.
  await new Promise((r) => setTimeout(r, 3000));
  await cluster.start(fault);
}

describe('the cluster loses a part in the middle of a cold copy and a warm sync', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    const vms = FAULTS.flatMap((f) => [vm(`cold-${f}`, 'poweredOff'), vm(`warm-${f}`, 'poweredOn')]);
    env = await createMigrationEnv(
      'cluster-faults',
      { vms },
      {
        // 12 MB/s per disk: a cold copy takes about ten seconds, a warm full sync (the allocated half) about six.
        filters: [{ name: 'rate', params: { rate: `${96 * 1000 * 1000}` } }],
        diskImages: Object.fromEntries(vms.map((v) => [v.name, DISK])),
      },
    );
    await env.startWorker();
  }, 300_000);

  afterAll(async () => {
    await env?.close();
  });

  it.each(FAULTS)('%s: both migrations complete, byte-identical', async (fault) => {
    const coldVm = `cold-${fault}`;
    const warmVm = `warm-${fault}`;
    const coldInput: ColdMigrationInput = {
      migrationId: `mig-fault-cold-${fault}`,
      sourceId: 'sim',
      vm: { name: coldVm },
      target: { project: 'p-faults', flavor: 'm1.small', volumeType: 'standard', networks: [] },
      guest: { convert: 'skip' },
    };
    const cold = await env.client.workflow.start('coldMigration', {
      workflowId: coldInput.migrationId,
      taskQueue: env.taskQueue,
      args: [coldInput, { heartbeatTimeoutSeconds: 10 }],
    });
    const warmId = `mig-fault-warm-${fault}`;
    await startWarmMigration(env, { id: warmId, vm: warmVm, project: 'p-faults', warm: { syncIntervalSeconds: 2 }, heartbeatTimeoutSeconds: 10 });

    // Both copies running on the worker and some way in (8 MiB proven, or 2 s since both started): then the fault.
    const deadline = Date.now() + 120_000;
    let at: { cold?: { bytesDone?: number }; warm?: { bytesDone?: number } } = {};
    let bothRunningSince: number | undefined;
    const someWayIn = () => (at.cold?.bytesDone ?? 0) >= 8 * MiB && (at.warm?.bytesDone ?? 0) >= 8 * MiB;
    while (!(at.cold && at.warm && (someWayIn() || Date.now() - bothRunningSince! >= 2000))) {
      if (Date.now() > deadline) {
        throw new Error(`the copies did not get under way; ${await whereItIs(env, coldInput.migrationId)}; ${await whereItIs(env, warmId)}`);
      }
      at = { cold: await runningCopy(env, coldInput.migrationId, 'exportDisk'), warm: await runningCopy(env, warmId, 'syncDisk') };
      if (at.cold && at.warm) bothRunningSince ??= Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
    const faultAt = Date.now();
    await inject(fault);

    const result = (await cold.result()) as ColdMigrationResult;
    expect(result.disks[0].verification.match).toBe(true);
    expect(await sha256File(env.target.volumePath('p-faults', `${coldInput.migrationId}-disk0`))).toBe(await sha256File(env.images[coldVm]));

    // The warm migration reaches Ready, the guest writes, and a cutover carries the rest.
    const ready = await waitForWarmState(env, warmId, (s) => s.stage === 'Ready', 120_000);
    expect(ready.totals?.failedSyncs).toBe(0);
    const live = liveDiskFile(env, env.sim.vms.findIndex((v) => v.name === warmVm));
    await randomWrites(live, DISK, seededRandom(FAULTS.indexOf(fault) + 1), 20);
    await env.client.workflow.getHandle(warmId).executeUpdate(cutoverUpdate, { args: [{ actor: 'fault-test' }] });
    await env.client.workflow.getHandle(warmId).result();
    expect(await sha256File(env.target.volumePath('p-faults', `${warmId}-disk0`))).toBe(await sha256File(live));

    // The fault really landed inside both copies: each began before it and ended after it.
    const spans = [await copySpan(env, coldInput.migrationId, 'exportDisk'), await copySpan(env, warmId, 'syncDisk')];
    for (const span of spans) {
      expect(span.from).toBeLessThan(faultAt);
      expect(span.to).toBeGreaterThan(faultAt);
    }
    const into = spans.map((span) => `${((faultAt - span.from) / 1000).toFixed(1)} s into a ${((span.to - span.from) / 1000).toFixed(1)} s`);
    process.stdout.write(`cluster fault ${fault}: ${into[0]} cold copy (attempt ${result.disks[0].attempt}), ${into[1]} warm full sync\n`);
  }, 300_000);
});
