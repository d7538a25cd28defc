/**
 * POST /migrations/:id/retry, for real: a cold migration that kept its volumes (target.keepOnFailure) starts again
 * under the same id from what is durable — a verified copy is not copied again, a copy cut short resumes where it
 * durably stopped — and ends with the target byte-identical to the source.
 */
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { recordRunHistories } from '../harness/record-histories';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const MiB = 1024 * 1024;
const vm = (name: string, capacityMiB: number, powerState: 'poweredOn' | 'poweredOff' = 'poweredOff') => ({ name, guestId: 'debian11_64Guest', firmware: 'bios' as const, numCPUs: 1, memoryMB: 1024, powerState, disks: [{ capacityMiB }], nics: [] });
const submission = (name: string, target: Record<string, unknown> = {}) => ({
  sourceId: 'sim',
  vm: { name },
  target: { project: 'p-retry', flavor: 'm1.small', volumeType: 'standard', networks: [], keepOnFailure: true, ...target },
  guest: { convert: 'skip' },
});

describe('retrying a cold migration from what is already durable', () => {
  let env: MigrationEnv;
  let api: TestApi;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'retry',
      { vms: [vm('taken', 8), vm('retry01', 32), vm('retry02', 256), vm('warm01', 64, 'poweredOn'), vm('warm02', 16, 'poweredOn'), vm('retry03', 256, 'poweredOn')] },
      // 80 Mbit/s per NBD connection: retry02's 256 MiB copy takes several seconds, time enough to cancel it partway.
      { filters: [{ name: 'rate', params: { rate: `${80 * 1000 * 1000}` } }], diskImages: { retry01: 32 * MiB, retry02: 256 * MiB, warm01: 64 * MiB, warm02: 16 * MiB, retry03: 256 * MiB } },
    );
    await env.startWorker();
    api = await startApi(env, { users: [{ name: 'carol', projects: ['p-retry'], role: 'member' }] });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('reuses a verified copy whose volume was kept: nothing is read or written again', async () => {
    // Another migration holds the instance name, so this one fails at Finalize, after its disk is copied and verified.
    const taken = await api.as('carol').post('/migrations', submission('taken', { instanceName: 'shared' }));
    expect((await waitForMigration(api.http, taken.data.id)).status).toBe('COMPLETED');
    const first = await api.as('carol').post('/migrations', submission('retry01', { instanceName: 'shared' }));
    expect(first.status).toBe(202);
    const id = first.data.id;
    const failed = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(failed).toMatchObject({ status: 'FAILED', stage: 'Failed' });
    expect(failed.error).toMatch(/instance p-retry\/shared already exists with a different spec/);
    expect(failed.disks[0]).toMatchObject({ state: 'copied', verification: { match: true } });

    // The operator frees the name; carol retries.
    await env.target.releaseMigration({ project: 'p-retry', migrationId: taken.data.id, keepVolumes: true });
    const retry = await api.as('carol').post(`/migrations/${id}/retry`);
    expect(retry.status).toBe(202);
    expect(retry.data).toMatchObject({ id, stage: 'Queued', retry: { reusedDisks: 1, resumedDisks: 0 } });
    const done = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', instance: { name: 'shared' } });
    expect(done.audit).toEqual([expect.objectContaining({ action: 'retry', actor: 'carol' })]);
    const events = (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; data?: any }>;
    expect(events.slice(0, 3).map((e) => e.name)).toEqual(['migration.submitted', 'migration.retried', 'migration.admitted']);
    expect(events[1].data).toMatchObject({ by: 'carol', reusedDisks: 1 });
    const write = events.find((e) => e.name === 'write.progress')!;
    expect(write.data).toMatchObject({ bytesWritten: 0, bytesTotal: 32 * MiB, verification: { match: true } });
    expect(await sha256File(env.target.volumePath('p-retry', `${id}-disk0`))).toBe(await sha256File(env.images.retry01));

    // Listed once, as its latest run.
    const listed = (await api.http.get('/migrations', { params: { project: 'p-retry' } })).data.migrations.filter((m: { id: string }) => m.id === id);
    expect(listed).toEqual([expect.objectContaining({ id, status: 'COMPLETED' })]);

    // Completed: nothing to retry.
    const again = await api.as('carol').post(`/migrations/${id}/retry`);
    expect(again.status).toBe(409);
    expect(again.data.detail).toBe(`migration ${id} has completed; there is nothing to retry`);
  }, 300_000);

  it('resumes a copy that was cut short where it durably stopped', async () => {
    const first = await api.as('carol').post('/migrations', submission('retry02'));
    const id = first.data.id;
    const copying = await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.disks[0]?.bytesDone >= 16 * MiB });
    expect(copying.status).toBe('RUNNING');
    expect((await api.as('carol').post(`/migrations/${id}/cancel`)).status).toBe(202);
    const cancelled = await waitForMigration(api.http, id, { timeoutMs: 60_000 });
    expect(cancelled.status).toBe('CANCELLED');
    const stoppedAt = cancelled.disks[0].bytesDone;
    expect(stoppedAt).toBeGreaterThanOrEqual(16 * MiB);
    expect(stoppedAt).toBeLessThan(256 * MiB);

    const retry = await api.as('carol').post(`/migrations/${id}/retry`);
    expect(retry.status).toBe(202);
    expect(retry.data.retry).toMatchObject({ reusedDisks: 0, resumedDisks: 1 });
    const done = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(done.status).toBe('COMPLETED');
    const exported = ((await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; data?: any }>).find((e) => e.name === 'export.progress')!;
    // Resumed on the chunk grid at or below where it stopped, well past the start, and read only the rest.
    expect(exported.data.resumedFrom).toBeGreaterThan(0);
    expect(exported.data.resumedFrom).toBeLessThanOrEqual(stoppedAt);
    expect(exported.data.bytesRead).toBeLessThanOrEqual(256 * MiB - exported.data.resumedFrom);
    expect(await sha256File(env.target.volumePath('p-retry', `${id}-disk0`))).toBe(await sha256File(env.images.retry02));

    // Re-record the replay test's history of a retried run with VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-retry-v1'));
  }, 300_000);

  it('copies anew what an earlier run copied if the source VM has run since', async () => {
    const sim = env.sim.vms.find((v) => v.name === 'retry03')!;
    const flat = path.join(env.sim.datastoreDir, sim.disks[0].flatPath);
    const first = await api.as('carol').post('/migrations', submission('retry03'));
    const id = first.data.id;
    await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.disks[0]?.bytesDone >= 16 * MiB });
    expect((await api.as('carol').post(`/migrations/${id}/cancel`)).status).toBe(202);
    const cancelled = await waitForMigration(api.http, id, { timeoutMs: 60_000 });
    expect(cancelled.status).toBe('CANCELLED');
    expect(cancelled.disks[0].bytesDone).toBeGreaterThan(0);
    // The cancel gave the VM back powered on, and its guest wrote over what had been copied.
    expect(await env.powerState('retry03')).toBe('poweredOn');
    await randomWrites(flat, 16 * MiB, seededRandom(9), 20, 64 * 1024);

    const retry = await api.as('carol').post(`/migrations/${id}/retry`);
    expect(retry.data.retry).toMatchObject({ resumedDisks: 1 });
    const done = await waitForMigration(api.http, id, { timeoutMs: 180_000 });
    expect(done.status).toBe('COMPLETED');
    const exported = ((await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; data?: any }>).find((e) => e.name === 'export.progress')!;
    // Not resumed: vCenter's events show the VM ran after the earlier copy began.
    expect(exported.data.resumedFrom).toBe(0);
    expect(await sha256File(env.target.volumePath('p-retry', `${id}-disk0`))).toBe(await sha256File(flat));
  }, 300_000);

  it('picks a cancelled warm migration up from its last sync: the first sync copies only what changed since', async () => {
    const sim = env.sim.vms.find((v) => v.name === 'warm01')!;
    const flat = path.join(env.sim.datastoreDir, sim.disks[0].flatPath);
    const warm = { kind: 'warm', warm: { syncIntervalSeconds: 3600 } };
    const first = await api.as('carol').post('/migrations', { ...submission('warm01', { keepOnFailure: false }), ...warm });
    expect(first.status).toBe(202);
    const id = first.data.id;
    await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.stage === 'Ready' });
    // The guest writes after the full sync; then the migration is cancelled (a warm cancel keeps its volumes).
    await randomWrites(flat, 64 * MiB, seededRandom(7), 12, 64 * 1024);
    expect((await api.as('carol').post(`/migrations/${id}/cancel`)).status).toBe(202);
    expect((await waitForMigration(api.http, id, { timeoutMs: 60_000 })).status).toBe('CANCELLED');

    const retry = await api.as('carol').post(`/migrations/${id}/retry`);
    expect(retry.status).toBe(202);
    expect(retry.data).toMatchObject({ kind: 'warm', retry: { reusedDisks: 1 } });
    const ready = await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.stage === 'Ready' });
    expect(ready.stage).toBe('Ready');
    const events = (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; stage: string; data?: any }>;
    const firstSync = events.find((e) => e.name === 'sync.progress' && !('live' in e && (e as { live?: boolean }).live))!;
    expect(firstSync.stage).toBe('FullSync');
    expect(firstSync.data.mode).toBe('incremental');
    expect(firstSync.data.bytesRead).toBeGreaterThan(0);
    expect(firstSync.data.bytesRead).toBeLessThan(8 * MiB);

    const cut = await api.as('carol').post(`/migrations/${id}/cutover`, {});
    expect(cut.status).toBe(202);
    const done = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(done.status).toBe('COMPLETED');
    expect(await sha256File(env.target.volumePath('p-retry', `${id}-disk0`))).toBe(await sha256File(flat));
  }, 300_000);

  it('syncs a retried warm migration in full when the volume its earlier run synced is gone', async () => {
    const sim = env.sim.vms.find((v) => v.name === 'warm02')!;
    const flat = path.join(env.sim.datastoreDir, sim.disks[0].flatPath);
    const first = await api.as('carol').post('/migrations', { ...submission('warm02', { keepOnFailure: false }), kind: 'warm', warm: { syncIntervalSeconds: 3600 } });
    const id = first.data.id;
    await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.stage === 'Ready' });
    expect((await api.as('carol').post(`/migrations/${id}/cancel`)).status).toBe(202);
    expect((await waitForMigration(api.http, id, { timeoutMs: 60_000 })).status).toBe('CANCELLED');
    // Someone deletes the kept volume before the retry: picking up from its change id would leave the new volume empty.
    await env.target.releaseMigration({ project: 'p-retry', migrationId: id, keepVolumes: false });
    await randomWrites(flat, 16 * MiB, seededRandom(8), 6, 64 * 1024);

    const retry = await api.as('carol').post(`/migrations/${id}/retry`);
    expect(retry.data.retry.reusedDisks).toBe(1);
    await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.stage === 'Ready' });
    const events = (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; live?: boolean; data?: any }>;
    const firstSync = events.find((e) => e.name === 'sync.progress' && !e.live)!;
    expect(firstSync.data).toMatchObject({ mode: 'full' });
    expect(firstSync.data.fullSyncReason).toMatch(/^the volume \S+ an earlier run synced is gone$/);
    expect((await api.as('carol').post(`/migrations/${id}/cutover`, {})).status).toBe(202);
    expect((await waitForMigration(api.http, id, { timeoutMs: 120_000 })).status).toBe('COMPLETED');
    expect(await sha256File(env.target.volumePath('p-retry', `${id}-disk0`))).toBe(await sha256File(flat));
  }, 300_000);
});
