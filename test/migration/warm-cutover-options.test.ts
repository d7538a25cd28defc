/**
 * Warm migration options: a cutover scheduled at submit time with a guest that ignores the shutdown request (power-off
 * fallback after the timeout) and the target started; and a cancel while Ready that removes vmigrate's snapshots,
 * leaves the running source as it was and deletes the target volumes when asked to.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { sha256File } from '../../tools/disk-image';
import { VimClient } from '../../vsphere/vim-client';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';

const MiB = 1024 * 1024;
const DISK = 32 * MiB;
const vm = (name: string, guestShutdown: 'works' | 'ignored') => ({
  name,
  guestId: 'debian11_64Guest',
  numCPUs: 1,
  memoryMB: 1024,
  powerState: 'poweredOn' as const,
  guestShutdown,
  disks: [{ capacityMiB: DISK / MiB }],
  nics: [],
});

describe('warm migration options', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    env = await createMigrationEnv('warm-options', { vms: [vm('sched01', 'ignored'), vm('cancel01', 'works')] }, { diskImages: { sched01: DISK, cancel01: DISK } });
    await env.startWorker();
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  async function snapshotsOf(name: string) {
    const vc = await VimClient.login({ url: env.sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
    try {
      return await vc.listSnapshots(await vc.findVm({ name }));
    } finally {
      await vc.logout();
    }
  }

  it('cuts over at the scheduled time, powers off a guest that ignores shutdown, and starts the target', async () => {
    const id = 'mig-warm-scheduled';
    const cutoverAt = new Date(Date.now() + 12_000).toISOString();
    const handle = await startWarmMigration(env, {
      id,
      vm: 'sched01',
      warm: { syncIntervalSeconds: 2, cutoverAt, shutdownTimeoutSeconds: 2, startTarget: true },
    });
    const ready = await waitForWarmState(env, id, (s) => s.stage === 'Ready');
    expect(ready.cutover).toMatchObject({ actor: 'schedule', via: 'schedule', at: cutoverAt });
    await randomWrites(liveDiskFile(env, 0), DISK, seededRandom(5), 16);

    const result = (await handle.result()) as WarmMigrationResult;
    expect(result.shutdown).toMatchObject({ previousPowerState: 'poweredOn', method: 'power-off', note: 'the guest did not shut down within 2 s; powered off instead' });
    // Not before the scheduled time (workflow time of the final sync's snapshot).
    expect(result.finalSync.snapshotAt).toBeGreaterThanOrEqual(Date.parse(cutoverAt));
    expect(result.instance.status).toBe('ACTIVE');
    expect(await sha256File(env.target.volumePath('proj-warm', `${id}-disk0`))).toBe(await sha256File(liveDiskFile(env, 0)));
    expect(await snapshotsOf('sched01')).toEqual([]);
  }, 180_000);

  it('on cancel while Ready: stops syncing, removes its snapshots, keeps the source running, deletes volumes if asked', async () => {
    const id = 'mig-warm-cancelled';
    const handle = await startWarmMigration(env, { id, vm: 'cancel01', warm: { syncIntervalSeconds: 1, deleteVolumesOnCancel: true } });
    await waitForWarmState(env, id, (s) => s.stage === 'Ready' && s.totals!.syncs >= 2);
    expect(await env.target.getVolume('proj-warm', `${id}-disk0`)).toBeDefined();
    await handle.cancel();
    const err = await handle.result().catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(await snapshotsOf('cancel01')).toEqual([]);
    expect(await env.powerState('cancel01')).toBe('poweredOn');
    expect(await env.target.getVolume('proj-warm', `${id}-disk0`)).toBeUndefined();
  }, 120_000);
});
