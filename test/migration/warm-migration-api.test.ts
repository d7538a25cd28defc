/**
 * Warm migration through the API, end to end: real Temporal dev server, the simulator with Changed Block Tracking
 * computed from the disk's real bytes, nbdkit reading the snapshots' frozen copies. A seeded "guest" keeps writing
 * into the live disk between syncs and while they run; after several syncs (and a continue-as-new) and a cutover,
 * the target must equal the source as it was at power-off.
 */
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { VimClient } from '../../vsphere/vim-client';
import { startApi, waitForMigration } from '../harness/api-server';
import { randomWrites, seededRandom, startGuestWriter } from '../harness/guest-writer';
import { recordRunHistories } from '../harness/record-histories';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';

const MiB = 1024 * 1024;
const DISK = 64 * MiB;

const vmSpec = (name: string) => ({
  name,
  guestId: 'debian11_64Guest',
  firmware: 'bios' as const,
  numCPUs: 1,
  memoryMB: 1024,
  powerState: 'poweredOn' as const,
  disks: [{ capacityMiB: DISK / MiB }],
  nics: [{ network: 'VM Network' }],
});

const submitBody = (vm: string, warm: Record<string, unknown>) => ({
  kind: 'warm',
  warm,
  // Syncing is under test here; conversion is covered by the guest end-to-end test.
  guest: { convert: 'skip' },
  sourceId: 'sim',
  vm: { name: vm },
  target: { project: 'proj1', flavor: 'm1.small', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'tenant-net' }] },
});

describe('warm migration through the API (CBT syncs, continue-as-new, cutover)', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    // Small CBT windows: every query needs several calls, as on a big disk in vSphere.
    env = await createMigrationEnv('warm', { cbtWindowMiB: 16, vms: [vmSpec('web01'), vmSpec('web02')] }, { diskImages: { web01: DISK, web02: DISK } });
    await env.startWorker();
    api = await startApi(env, { users: [{ name: 'alice', projects: ['proj1'], role: 'member' }, { name: 'bob', projects: ['proj1'], role: 'member' }] });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  const flatFile = (vm: number) => path.join(env.sim.datastoreDir, env.sim.vms[vm].disks[0].flatPath);

  it('syncs changes while the guest writes, refuses early and repeated cutovers, and ends byte-identical', async () => {
    const submit = await api.http.post('/migrations', submitBody('web01', { syncIntervalSeconds: 1, syncsPerRun: 2 }));
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;
    expect(submit.data.links.cutover).toBe(`/migrations/${id}/cutover`);

    // Not Ready yet (preflight or the full sync): refused, with the reason.
    const early = await api.as('bob').post(`/migrations/${id}/cutover`, {});
    expect(early.status).toBe(409);
    expect(early.data.detail).toMatch(/is (Queued|FullSync); cutover is possible only while it is Ready/);

    const writer = startGuestWriter(flatFile(0), DISK, 1234, { burst: 2, pauseMs: 100, maxLength: 64 * 1024 });
    let status: any;
    try {
      // Several incremental syncs, across at least one continue-as-new (syncsPerRun: 2).
      status = await waitForMigration(api.http, id, { done: (s) => s.status !== 'RUNNING' || ((s.warm?.totals?.syncs ?? 0) >= 5 && (s.warm?.run ?? 0) >= 2), timeoutMs: 120_000 });
    } finally {
      await writer.stop();
    }
    expect(status.status).toBe('RUNNING');
    expect(writer.writes).toBeGreaterThan(20);
    // Listed once while it runs, however many runs it has continued through.
    const listed = (await api.http.get('/migrations', { params: { project: 'proj1' } })).data.migrations.filter((m: { id: string }) => m.id === id);
    expect(listed).toEqual([expect.objectContaining({ id, status: 'RUNNING' })]);
    expect(status.stage).toMatch(/Ready|Syncing/);
    expect(status.warm.totals.failedSyncs).toBe(0);
    expect(status.warm.changeTracking.enabledBefore).toBe(false);
    const incrementals = status.warm.syncs.filter((s: any) => s.kind === 'incremental');
    expect(incrementals.length).toBeGreaterThanOrEqual(1);
    // Incremental syncs read what CBT reported changed, not the disk.
    for (const s of incrementals) expect(s.bytesRead).toBe(s.changedBytes);
    expect(Math.max(...incrementals.map((s: any) => s.changedBytes))).toBeLessThan(DISK / 2);
    expect(status.warm.forecast.predictedFinalSyncMs).toBeGreaterThan(0);
    expect(status.warm.forecast.dirtyBytesPerSecond).toBeGreaterThan(0);

    // Changes after the last periodic sync are left for the final sync to carry.
    await randomWrites(flatFile(0), DISK, seededRandom(99), 20);

    // The actor is whoever holds the token, not what a body says.
    const cut = await api.as('alice').post(`/migrations/${id}/cutover`, {});
    expect(cut.status).toBe(202);
    expect(cut.data).toMatchObject({ accepted: true, actor: 'alice', via: 'update' });
    const again = await api.as('bob').post(`/migrations/${id}/cutover`, {});
    expect(again.status).toBe(409);
    expect(again.data.detail).toMatch(/^cutover was already requested by alice at \d{4}-/);

    const done = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', stage: 'Completed' });
    expect(done.disks[0]).toMatchObject({ state: 'synced', volume: `${id}-disk0`, lastSync: { mode: 'incremental' } });
    expect(await env.powerState('web01')).toBe('poweredOff');

    const volume = env.target.volumePath('proj1', `${id}-disk0`);
    expect(await sha256File(volume)).toBe(await sha256File(flatFile(0)));

    // The event stream tells the story in order, and records who cut over.
    const events = (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; stage: string; data?: any }>;
    const names = events.map((e) => e.name);
    const order = ['cbt.enabled', 'snapshot.created', 'cutover.requested', 'source.powered_off', 'guest_fixes.started', 'finalize.completed', 'migration.completed'];
    const firsts = order.map((n) => names.indexOf(n));
    expect(firsts.every((i) => i >= 0)).toBe(true);
    expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
    const cutoverEvent = events.find((e) => e.name === 'cutover.requested')!;
    expect(cutoverEvent.data).toMatchObject({ actor: 'alice', via: 'update' });
    // Events span every run (the full sync happened in the first one).
    expect(events.find((e) => e.name === 'snapshot.created')!.stage).toBe('FullSync');
    const finalSync = events.filter((e) => e.name === 'sync.progress' && e.stage === 'CuttingOver');
    expect(finalSync).toHaveLength(1);
    expect(finalSync[0].data.mode).toBe('incremental');

    // Re-record the replay test's histories with VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'warm-migration-admission-v1'));

    // Nothing of ours is left on the source.
    const vc = await VimClient.login({ url: env.sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
    try {
      expect(await vc.listSnapshots(await vc.findVm({ name: 'web01' }))).toEqual([]);
    } finally {
      await vc.logout();
    }
  }, 300_000);

  it('rejects bad warm options and cutover bodies with the field and reason', async () => {
    const bad = await api.http.post('/migrations', submitBody('web02', { syncIntervalSeconds: 0 }));
    expect(bad.status).toBe(400);
    expect(bad.data.errors).toContainEqual({ field: 'warm.syncIntervalSeconds', reason: 'must be at least 1 second' });
    const coldWithWarm = await api.http.post('/migrations', { ...submitBody('web02', {}), kind: 'cold' });
    expect(coldWithWarm.status).toBe(400);
    expect(coldWithWarm.data.errors).toContainEqual({ field: 'warm', reason: 'warm options need "kind": "warm"' });
    const badCut = await api.http.post('/migrations/mig-nope/cutover', { at: 'tomorrow' });
    expect(badCut.status).toBe(400);
    expect(badCut.data.errors[0].field).toBe('at');
    // An unknown field (the actor comes from the token) is refused too.
    const actorInBody = await api.http.post('/migrations/mig-nope/cutover', { actor: 'mallory' });
    expect(actorInBody.status).toBe(400);
  });
});
