import { startApi, waitForMigration } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

/** Problems that retrying cannot fix are refused at submission by preflight, before the source is touched. */
describe('a migration that cannot work is refused by preflight with the reason, leaving the source alone', () => {
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

  /** The submission is refused with 422 naming the rule, and nothing starts. */
  async function refused(target: Record<string, unknown>, vm: Record<string, unknown> = { name: 'big01' }) {
    const before = (await api.http.get('/migrations', { params: { project: 'p-pre' } })).data.migrations.length;
    const submit = await api.http.post('/migrations', { sourceId: 'sim', vm, target: { project: 'p-pre', volumeType: 'standard', ...target } });
    expect(submit.status).toBe(422);
    expect(submit.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect((await api.http.get('/migrations', { params: { project: 'p-pre' } })).data.migrations).toHaveLength(before);
    return { detail: submit.data.detail as string, codes: (submit.data.reasons as Array<{ code: string; severity: string }>).filter((r) => r.severity === 'fail').map((r) => r.code) };
  }

  const powerState = () => env.powerState('big01');

  it('an unmapped NIC', async () => {
    const { detail, codes } = await refused({ flavor: 'm1.xlarge', networks: [] });
    expect(codes).toEqual(['network.unmapped']);
    expect(detail).toMatch(/source NIC [0-9a-f:]+ on network 'VM Network' has no target network mapping/);
    expect(await powerState()).toBe('poweredOn');
  });

  it('a flavor smaller than the source VM', async () => {
    const { detail, codes } = await refused({ flavor: 'm1.small', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'n1' }] });
    expect(codes).toEqual(['flavor.too_small']);
    expect(detail).toMatch(/flavor 'm1.small' \(1 vCPU, 2048 MB\) is smaller than the source VM \(4 vCPU, 8192 MB\)/);
    expect(await powerState()).toBe('poweredOn');
  });

  it('Secure Boot with the i440fx machine type (its firmware needs SMM, which only q35 has)', async () => {
    const { detail, codes } = await refused({ flavor: 'm1.small', networks: [], machineType: 'pc-i440fx' }, { name: 'sb01' });
    expect(codes).toEqual(['firmware.machine_type']);
    expect(detail).toMatch(/the source VM boots with UEFI Secure Boot, which needs the q35 machine type on the target .*leave target.machineType unset or set it to 'pc-q35'/);
    expect(await env.powerState('sb01')).toBe('poweredOn');
  });

  it('a VM that does not exist is refused at submission (404), and nothing starts', async () => {
    const before = (await api.http.get('/migrations', { params: { project: 'p-pre' } })).data.migrations.length;
    const submit = await api.http.post('/migrations', { sourceId: 'sim', vm: { name: 'no-such-vm' }, target: { project: 'p-pre', volumeType: 'standard', flavor: 'm1.xlarge', networks: [] } });
    expect(submit.status).toBe(404);
    expect(submit.data.detail).toBe("no VM named 'no-such-vm' in the source");
    expect((await api.http.get('/migrations', { params: { project: 'p-pre' } })).data.migrations).toHaveLength(before);
  });
});
