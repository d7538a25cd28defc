/**
 * Faults in each part of a real Temporal cluster (PostgreSQL, history, matching, frontend as separate processes),
 * each landing while a cold migration copies its disk and a warm migration runs its full sync. The migrations must
 * carry on by themselves — the worker and the clients reconnect, lost heartbeats and completions are recovered by
 * Temporal's timeouts and our resume watermark — and end Completed with the target byte-identical to the source.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { ColdMigrationInput } from '../../shared/migration-input';
import { sha256File } from '../../tools/disk-image';
import type { TemporalService } from '../../tools/temporal-cluster/cluster-versions';
import type { ColdMigrationResult } from '../../workflows/cold-migration';
import { cutoverUpdate } from '../../workflows/warm-migration-state';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { useOwnCluster } from '../harness/temporal-cluster';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';

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

/** The pending copy activity's durable watermark (its last heartbeat), or undefined while there is none. */
async function copyWatermark(env: MigrationEnv, id: string, type: 'exportDisk' | 'syncDisk'): Promise<number | undefined> {
  // describe() only: a warm migration's whole history is too slow to read this often.
  const { raw } = await env.client.workflow.getHandle(id).describe();
  const pending = raw.pendingActivities?.find((a) => a.activityType?.name === type);
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  return payload ? (defaultPayloadConverter.fromPayload(payload) as { bytesDone?: number }).bytesDone : undefined;
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
        // 12 MB/s per disk: each copy takes about ten seconds, so the fault lands inside it.
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

    // Both transfers under way and not finished: then the fault.
    const deadline = Date.now() + 60_000;
    let at: { cold?: number; warm?: number } = { cold: undefined, warm: undefined };
    while (!(at.cold !== undefined && at.cold >= 8 * MiB && at.warm !== undefined && at.warm >= 8 * MiB)) {
      if (Date.now() > deadline) throw new Error(`the copies did not get under way: cold at ${at.cold}, warm at ${at.warm}`);
      at = { cold: await copyWatermark(env, coldInput.migrationId, 'exportDisk'), warm: await copyWatermark(env, warmId, 'syncDisk') };
      await new Promise((r) => setTimeout(r, 200));
    }
    // Still copying: the watermark is short of the end (a sync's jumps over what the guest never wrote).
    expect(at.cold).toBeLessThan(DISK);
    expect(at.warm).toBeLessThan(DISK);
    await inject(fault);

    const result = (await cold.result()) as ColdMigrationResult;
    expect(result.disks[0].verification.match).toBe(true);
    expect(await sha256File(env.target.volumePath('p-faults', `${coldInput.migrationId}-disk0`))).toBe(await sha256File(env.images[coldVm]));

    // The warm migration reaches Ready, the guest writes, and a cutover carries the rest.
    const ready = await waitForWarmState(env, warmId, (s) => s.stage === 'Ready', 120_000);
    expect(ready.totals?.failedSyncs).toBe(0);
    const live = liveDiskFile(env, env.sim.vms.findIndex((v) => v.name === warmVm));
    await randomWrites(live, DISK, seededRandom(fault.length), 20);
    await env.client.workflow.getHandle(warmId).executeUpdate(cutoverUpdate, { args: [{ actor: 'fault-test' }] });
    await env.client.workflow.getHandle(warmId).result();
    expect(await sha256File(env.target.volumePath('p-faults', `${warmId}-disk0`))).toBe(await sha256File(live));
    process.stdout.write(`cluster fault ${fault}: injected at cold ${(at.cold! / MiB).toFixed(0)} MiB, warm ${(at.warm! / MiB).toFixed(0)} MiB of ${DISK / MiB} MiB; cold copy attempt ${result.disks[0].attempt}\n`);
  }, 300_000);
});
