/**
 * The warm correctness loop over several random seeds, run side by side: each seed's guest writes while syncs run,
 * and after a few syncs and a cutover every target must equal its source at power-off. (bench:incremental loops more
 * seeds; raise BENCH_SEEDS for a nightly run.)
 */
import { sha256File } from '../../tools/disk-image';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { cutoverUpdate } from '../../workflows/warm-migration-state';
import { startGuestWriter } from '../harness/guest-writer';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';

const MiB = 1024 * 1024;
const DISK = 16 * MiB;
const SEEDS = [11, 22, 33];

describe('warm migration over several random seeds', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    const vms = SEEDS.map((seed) => ({ name: `seed${seed}`, guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn' as const, disks: [{ capacityMiB: DISK / MiB }], nics: [] }));
    // 1 MiB CBT windows: each query loops 16 times.
    env = await createMigrationEnv('warm-seeds', { cbtWindowMiB: 1, vms }, { diskImages: Object.fromEntries(vms.map((v) => [v.name, DISK])) });
    await env.startWorker();
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  it.each(SEEDS.map((seed, i) => [seed, i]))('seed %i ends byte-identical', async (seed, index) => {
    const id = `mig-warm-seed-${seed}`;
    const handle = await startWarmMigration(env, { id, vm: `seed${seed}`, warm: { syncIntervalSeconds: 1 } });
    await waitForWarmState(env, id, (s) => s.stage === 'Ready');
    const writer = startGuestWriter(liveDiskFile(env, index), DISK, seed, { burst: 3, pauseMs: 30, maxLength: 96 * 1024 });
    try {
      await waitForWarmState(env, id, (s) => s.totals!.syncs >= 4);
    } finally {
      // The guest's last writes land after the last periodic sync: the final sync must carry them.
      await writer.stop();
    }
    await handle.executeUpdate(cutoverUpdate, { args: [{ actor: `seed-${seed}` }] });
    const result = (await handle.result()) as WarmMigrationResult;
    expect(result.totals.failedSyncs).toBe(0);
    expect(result.totals.fullResyncs).toBe(0);
    expect(await sha256File(env.target.volumePath('proj-warm', `${id}-disk0`))).toBe(await sha256File(liveDiskFile(env, index)));
  }, 120_000);
});
