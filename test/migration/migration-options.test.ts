/**
 * Migration options of the wizard that the local target carries out, end to end on the dev server and simulator:
 * a storage mapping per datastore and per disk, auto-deploy of a warm migration, and the refusals of options that
 * cannot be honoured (never dropped) and of contradictory ones.
 */
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const vm = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  guestId: 'debian12_64Guest',
  numCPUs: 1,
  memoryMB: 1024,
  powerState: 'poweredOff' as const,
  disks: [{ capacityMiB: 8 }, { capacityMiB: 8, datastore: 'LocalDS_1' }, { capacityMiB: 8, datastore: 'LocalDS_1' }],
  nics: [{ network: 'VM Network' }],
  ...extra,
});

const body = (name: string, target: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  sourceId: 'sim',
  vm: { name },
  target: { project: 'p-opt', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'net-a' }], ...target },
  guest: { convert: 'skip' },
  ...extra,
});

describe('migration options', () => {
  let env: MigrationEnv;
  let api: TestApi;

  beforeAll(async () => {
    env = await createMigrationEnv('options', {
      datastores: 2,
      vms: [
        vm('store-1'),
        vm('auto-1', { powerState: 'poweredOn', disks: [{ capacityMiB: 8 }] }),
        vm('clean-1', { powerState: 'poweredOn', disks: [{ capacityMiB: 8 }] }),
        vm('stubborn-1', { powerState: 'poweredOn', guestShutdown: 'ignored', disks: [{ capacityMiB: 8 }] }),
        vm('later-1', { disks: [{ capacityMiB: 8 }] }),
      ],
    });
    await env.startWorker();
    api = await startApi(env);
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('gives each volume the type of its disk’s mapping, else its datastore’s, else the migration’s', async () => {
    const submit = await api.http.post('/migrations', body('store-1', { storageMap: [{ datastore: 'LocalDS_1', volumeType: 'fast' }, { diskKey: 2002, volumeType: 'archive' }] }));
    expect(submit.status).toBe(202);
    expect((await waitForMigration(api.http, submit.data.id, { timeoutMs: 120_000 })).status).toBe('COMPLETED');
    const types = await Promise.all(['2000', '2001', '2002'].map(async (disk) => (await env.target.findVolume('p-opt', { migrationId: submit.data.id, disk }))?.volumeType));
    expect(types).toEqual(['standard', 'fast', 'archive']);
    // A mapping that matches no disk of the VM is worth a warning.
    const pre = await api.http.post('/preflight', body('store-1', { storageMap: [{ datastore: 'LocalDS_9', volumeType: 'fast' }] }));
    expect(pre.data.verdicts[0].reasons).toEqual([expect.objectContaining({ code: 'storage.unused', severity: 'warn' })]);
  }, 180_000);

  it('auto-deploys a warm migration as soon as its full sync is done', async () => {
    const submit = await api.http.post('/migrations', body('auto-1', {}, { kind: 'warm', warm: { autoDeploy: true, syncIntervalSeconds: 3600 } }));
    expect(submit.status).toBe(202);
    const status = await waitForMigration(api.http, submit.data.id, { timeoutMs: 120_000 });
    expect(status.status).toBe('COMPLETED');
    const events = (await api.http.get(`/migrations/${submit.data.id}/events`)).data.events.map((e: { name: string }) => e.name);
    // One full sync, the final sync at cutover, and no cutover request from anyone.
    expect(events.filter((n: string) => n === 'snapshot.created')).toHaveLength(2);
    expect(events).not.toContain('cutover.requested');
  }, 180_000);

  it('shuts a cold migration’s source down through VMware Tools when asked, powering off hard after the timeout', async () => {
    const [clean, stubborn] = await Promise.all(
      [
        ['clean-1', {}],
        ['stubborn-1', { shutdownTimeoutSeconds: 2 }],
      ].map(async ([name, extra]) => {
        const submit = await api.http.post('/migrations', body(name as string, {}, { cold: { shutdownSource: true, ...(extra as object) } }));
        expect(submit.status).toBe(202);
        const status = await waitForMigration(api.http, submit.data.id, { timeoutMs: 120_000 });
        expect(status.status).toBe('COMPLETED');
        const events = (await api.http.get(`/migrations/${submit.data.id}/events`)).data.events as Array<{ name: string; stage: string; data?: { method?: string } }>;
        return { status, off: events.find((e) => e.name === 'source.powered_off')! };
      }),
    );
    expect(clean.off).toMatchObject({ stage: 'Export', data: { method: 'guest-shutdown', previousPowerState: 'poweredOn' } });
    expect(stubborn.off).toMatchObject({ stage: 'Export', data: { method: 'power-off' } });
    expect(stubborn.status.warnings.join('\n')).toMatch(/2 s/);
    expect(await env.powerState('stubborn-1')).toBe('poweredOff');
  }, 180_000);

  it('creates a migration to be started later: it holds its VM outside the line until started', async () => {
    const submit = await api.http.post('/migrations', { ...body('later-1'), startReplication: false });
    expect(submit.status).toBe(202);
    const id = submit.data.id;
    // Give it time to have started copying, were it going to.
    await new Promise((r) => setTimeout(r, 3000));
    const waiting = (await api.http.get(`/migrations/${id}`)).data;
    expect(waiting).toMatchObject({ status: 'RUNNING', stage: 'Queued', awaitingStart: true });
    const names = async () => (await api.http.get(`/migrations/${id}/events`)).data.events.map((e: { name: string }) => e.name);
    expect(await names()).not.toContain('write.started');
    expect((await api.http.get('/admission')).data.queue.map((q: { migrationId: string }) => q.migrationId)).not.toContain(id);
    // Its VM is taken: another migration of it is refused.
    const twice = await api.http.post('/migrations', body('later-1'));
    expect(twice.status).toBe(409);
    expect(twice.data.migration).toBe(id);

    const start = await api.http.post(`/migrations/${id}/start`, {});
    expect(start.status).toBe(202);
    expect(start.data).toEqual({ id, started: true, actor: 'admin' });
    expect((await api.http.post(`/migrations/${id}/start`, {})).status).toBe(409);
    const status = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(status.status).toBe('COMPLETED');
    expect(status.awaitingStart).toBeUndefined();
    const events = await names();
    // Started, then granted its copy slots (admitted to copy), then copied.
    expect(events.slice(0, 3)).toEqual(['migration.submitted', 'replication.started', 'migration.admitted']);
    expect(events.indexOf('write.started')).toBeGreaterThan(2);
    const again = await api.http.post(`/migrations/${id}/start`, {});
    expect(again.status).toBe(409);
    expect(again.data.detail).toMatch(/has already ended \(COMPLETED\)/);
  }, 180_000);

  it('refuses options that cannot be honoured and contradictory ones, before anything starts', async () => {
    const clone = await api.http.post('/migrations', body('store-1', { cloneDisks: false }));
    expect(clone.status).toBe(422);
    expect(clone.data.reasons).toEqual([expect.objectContaining({ code: 'option.unsupported', message: expect.stringMatching(/^cloneDisks false cannot be honoured/) })]);
    const floating = await api.http.post('/migrations', body('store-1', { networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'net-a', floatingIpNetwork: 'public', securityGroups: ['web'] }] }));
    expect(floating.status).toBe(422);
    expect(floating.data.reasons.map((r: { code: string }) => r.code)).toEqual(['option.unsupported', 'option.unsupported']);
    for (const [bad, field] of [
      [body('store-1', { networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'net-a', keepIps: true, fixedIps: ['10.0.0.5'] }] }), 'target.networks.0.keepIps'],
      [body('store-1', { storageMap: [{ datastore: 'LocalDS_1', diskKey: 2001, volumeType: 'fast' }] }), 'target.storageMap.0.datastore'],
      [body('store-1', {}, { kind: 'warm', warm: { autoDeploy: true, cutoverAt: '2030-01-01T00:00:00Z' } }), 'warm.autoDeploy'],
      [body('store-1', { replicateLater: true }), 'target'],
    ] as const) {
      const res = await api.http.post('/migrations', bad);
      expect(res.status).toBe(400);
      expect(res.data.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect((await api.http.get('/migrations', { params: { status: 'running' } })).data.migrations).toEqual([]);
  }, 60_000);
});
