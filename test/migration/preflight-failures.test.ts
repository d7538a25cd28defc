import { startApi, waitForMigration } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

/** Problems that retrying cannot fix fail the migration fast, in Queued, before the source is touched. */
describe('a migration that cannot work fails in preflight with the reason, leaving the source alone', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    env = await createMigrationEnv('preflight', {
      vms: [
        { name: 'big01', guestId: 'debian11_64Guest', firmware: 'bios', numCPUs: 4, memoryMB: 8192, powerState: 'poweredOn', disks: [{ capacityMiB: 16 }], nics: [{ network: 'VM Network' }] },
        { name: 'sb01', guestId: 'debian12_64Guest', firmware: 'efi', secureBoot: true, numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: 16 }], nics: [] },
      ],
    });
    await env.startWorker();
    api = await startApi(env);
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  async function runToEnd(target: Record<string, unknown>, vm: Record<string, unknown> = { name: 'big01' }) {
    const submit = await api.http.post('/migrations', { sourceId: 'sim', vm, target: { project: 'p-pre', volumeType: 'standard', ...target } });
    expect(submit.status).toBe(202);
    const status = await waitForMigration(api.http, submit.data.id, { timeoutMs: 60_000 });
    const events = (await api.http.get(`/migrations/${submit.data.id}/events`)).data.events;
    return { status, events: events.map((e: { name: string }) => e.name) as string[] };
  }

  const powerState = () => env.powerState('big01');

  it('an unmapped NIC', async () => {
    const { status, events } = await runToEnd({ flavor: 'm1.xlarge', networks: [] });
    expect(status).toMatchObject({ status: 'FAILED', stage: 'Failed' });
    expect(status.error).toMatch(/source NIC [0-9a-f:]+ on network 'VM Network' has no target network mapping/);
    expect(events).toEqual(['migration.submitted', 'migration.admitted', 'migration.failed']);
    expect(await powerState()).toBe('poweredOn');
  });

  it('a flavor smaller than the source VM', async () => {
    const { status, events } = await runToEnd({ flavor: 'm1.small', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'n1' }] });
    expect(status.status).toBe('FAILED');
    expect(status.error).toMatch(/flavor 'm1.small' \(1 vCPU, 2048 MB\) is smaller than the source VM \(4 vCPU, 8192 MB\)/);
    expect(events).toEqual(['migration.submitted', 'migration.admitted', 'migration.failed']);
    expect(await powerState()).toBe('poweredOn');
  });

  it('Secure Boot with the i440fx machine type (its firmware needs SMM, which only q35 has)', async () => {
    const { status, events } = await runToEnd({ flavor: 'm1.small', networks: [], machineType: 'pc-i440fx' }, { name: 'sb01' });
    expect(status).toMatchObject({ status: 'FAILED', stage: 'Failed' });
    expect(status.error).toMatch(/the source VM boots with UEFI Secure Boot, which needs the q35 machine type on the target .*leave target.machineType unset or set it to 'pc-q35'/);
    expect(events).toEqual(['migration.submitted', 'migration.admitted', 'migration.failed']);
    expect(await env.powerState('sb01')).toBe('poweredOn');
  });

  it('a VM that does not exist is refused at submission (404), and nothing starts', async () => {
    const before = (await api.http.get('/migrations', { params: { project: 'p-pre' } })).data.migrations.length;
    const submit = await api.http.post('/migrations', { sourceId: 'sim', vm: { name: 'no-such-vm' }, target: { project: 'p-pre', volumeType: 'standard', flavor: 'm1.xlarge', networks: [] } });
    expect(submit.status).toBe(404);
    expect(submit.data.detail).toMatch(/VM named "no-such-vm" not found/);
    expect((await api.http.get('/migrations', { params: { project: 'p-pre' } })).data.migrations).toHaveLength(before);
  });
});
