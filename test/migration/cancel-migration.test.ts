import { startApi, waitForMigration } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const MiB = 1024 * 1024;

describe('cancelling a cold migration mid-copy', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'cancel',
      { vms: [{ name: 'app01', guestId: 'debian11_64Guest', firmware: 'bios', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: 256 }], nics: [] }] },
      // 10 MB/s through nbdkit's rate filter: the copy takes ~25 s, plenty of time to cancel it.
      { filters: [{ name: 'rate', params: { rate: `${80 * 1000 * 1000}` } }], diskImages: { app01: 256 * MiB } },
    );
    await env.startWorker();
    api = await startApi(env);
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('stops the copy, powers the source back on, and ends Cancelled with migration.cancelled', async () => {
    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'app01' },
      target: { project: 'p-cancel', flavor: 'm1.small', volumeType: 'standard', networks: [] },
      // Cancelling the copy is under test: no libguestfs inspection (about a minute under TCG) before it starts.
      guest: { convert: 'skip' },
    });
    expect(submit.status).toBe(202);
    const id = submit.data.id;

    const copying = await waitForMigration(api.http, id, {
      timeoutMs: 240_000,
      done: (s) => s.status !== 'RUNNING' || (s.stage === 'WriteVolume' && s.disks[0].bytesDone > 0),
    });
    expect(copying.status).toBe('RUNNING');

    // A second migration of the same VM while this one runs is refused.
    const again = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'app01' },
      target: { project: 'p-other', flavor: 'm1.small', volumeType: 'standard', networks: [] },
    });
    expect(again.status).toBe(409);
    expect(again.data).toMatchObject({ type: 'urn:vmigrate:problem:conflict', migration: id });
    expect(again.data.detail).toMatch(new RegExp(`^VM app01 \\(vm-\\d+\\) of source sim is already being migrated by ${id}; cancel it or wait for it to end$`));

    const cancel = await api.http.post(`/migrations/${id}/cancel`);
    expect(cancel.status).toBe(202);

    const status = await waitForMigration(api.http, id, { timeoutMs: 60_000 });
    expect(status.status).toBe('CANCELLED');
    expect(status.stage).toBe('Cancelled');
    // The disk reports where the copy durably stopped, not zero and not the whole disk.
    expect(status.disks[0].state).toBe('cancelled');
    expect(status.disks[0].bytesDone).toBeGreaterThanOrEqual(copying.disks[0].bytesDone);
    expect(status.disks[0].bytesDone).toBeLessThan(256 * MiB);

    const names = (await api.http.get(`/migrations/${id}/events`)).data.events.map((e: { name: string }) => e.name);
    expect(names.slice(0, 3)).toEqual(['migration.submitted', 'migration.admitted', 'source.powered_off']);
    // Who cancelled is in the migration's own history, just before it ended.
    expect(names.slice(-2)).toEqual(['cancel.requested', 'migration.cancelled']);
    expect(status.audit).toEqual([expect.objectContaining({ action: 'cancel', actor: 'admin' })]);
    expect(status.submittedBy).toBe('admin');
    expect(names).not.toContain('migration.completed');
    expect(await env.powerState('app01')).toBe('poweredOn');

    const cancelAgain = await api.http.post(`/migrations/${id}/cancel`);
    expect(cancelAgain.status).toBe(409);
    expect(cancelAgain.data.detail).toBe(`migration ${id} has already ended (CANCELLED); nothing to cancel`);
  }, 360_000);
});
