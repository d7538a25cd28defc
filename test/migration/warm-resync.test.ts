/**
 * CBT answers that cannot be trusted must force a full resync, never a silently skipped change: windows that do not
 * reach the capacity, an area outside the disk, a CBT fault, and a CBT reset (change ids of an old epoch). A flaky
 * vCenter (HTTP 503, dropped connections) is retried instead. Each step writes to the live disk first, and the
 * migration must still end byte-identical.
 */
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { VimClient } from '../../vsphere/vim-client';
import { cutoverSignal, type WarmMigrationState } from '../../workflows/warm-migration-state';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { recordRunHistories } from '../harness/record-histories';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';

const MiB = 1024 * 1024;
const DISK = 32 * MiB;

describe('warm migration: untrustworthy Changed Block Tracking forces a full resync', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'warm-resync',
      {
        cbtWindowMiB: 8,
        vms: [{ name: 'app01', guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: DISK / MiB }], nics: [] }],
      },
      { diskImages: { app01: DISK } },
    );
    await env.startWorker();
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  it('resyncs in full on partial windows, bad areas, faults and a CBT reset; retries transient errors; ends identical', async () => {
    const id = 'mig-warm-resync';
    const handle = await startWarmMigration(env, { id, vm: 'app01', warm: { syncIntervalSeconds: 1 } });
    const disk = liveDiskFile(env, 0);
    const random = seededRandom(7);
    let state = await waitForWarmState(env, id, (s) => s.stage === 'Ready' || s.stage === 'Syncing');

    /** Write, break CBT in some way, and wait for the next completed sync. */
    async function nextSyncAfter(breakIt: () => Promise<void>): Promise<WarmMigrationState> {
      const before = state.totals!.syncs;
      await randomWrites(disk, DISK, random, 12, 128 * 1024);
      await breakIt();
      state = await waitForWarmState(env, id, (s) => s.totals!.syncs >= before + 2);
      return state;
    }
    const fullResyncs = () => state.warnings!.filter((w) => w.includes('resynced in full'));

    await nextSyncAfter(() => env.sim.injectCbtFault('app01', 'zero-length-window'));
    expect(fullResyncs().at(-1)).toMatch(/not trustworthy/);
    expect(state.totals!.fullResyncs).toBe(1);

    await nextSyncAfter(() => env.sim.injectCbtFault('app01', 'area-outside-disk'));
    expect(fullResyncs().at(-1)).toMatch(/not trustworthy.*outside/);
    expect(state.totals!.fullResyncs).toBe(2);

    await nextSyncAfter(() => env.sim.injectCbtFault('app01', 'query-fault'));
    expect(state.totals!.fullResyncs).toBe(3);

    // CBT off and on again: a new epoch; the recorded change id is refused, so the sync goes full.
    await nextSyncAfter(async () => {
      const vc = await VimClient.login({ url: env.sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
      try {
        const vm = await vc.findVm({ name: 'app01' });
        await vc.setChangeTracking(vm, false);
        await vc.setChangeTracking(vm, true);
      } finally {
        await vc.logout();
      }
    });
    expect(state.totals!.fullResyncs).toBeGreaterThanOrEqual(4);
    expect(fullResyncs().some((w) => /reset|no change id|not trustworthy/.test(w))).toBe(true);
    const resyncsBeforeTransient = state.totals!.fullResyncs;

    // A flaky vCenter: retried, not resynced and not skipped.
    await nextSyncAfter(() => env.sim.injectCbtFault('app01', 'transient', 2));
    expect(state.totals!.fullResyncs).toBe(resyncsBeforeTransient);
    expect(state.totals!.failedSyncs).toBe(0);

    await randomWrites(disk, DISK, random, 12, 128 * 1024);
    await handle.signal(cutoverSignal, { actor: 'ops' });
    const result = (await handle.result()) as WarmMigrationResult;
    expect(result.cutover).toMatchObject({ actor: 'ops', via: 'signal' });
    expect(result.finalSync.kind).toBe('final');
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'warm-resync-v1'));
    const volume = env.target.volumePath('proj-warm', `${id}-disk0`);
    expect(await sha256File(volume)).toBe(await sha256File(disk));
  }, 240_000);
});
