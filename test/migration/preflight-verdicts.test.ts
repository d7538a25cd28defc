/**
 * Preflight verdicts through the real API, dev server, worker and simulator: a VM built to trip each rule gets Fail
 * or Warn with that rule's code; a clean one passes; submitting a Fail VM is refused (422) naming its rules while
 * the others of the same request go ahead; an accepted migration keeps its verdict in its status; the estimated
 * runtime says there is no history until a migration has completed, then is derived from it.
 */
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import type { SimVmSpec } from '../../tools/vcsim/launch';

const base = (name: string, extra: Partial<SimVmSpec> = {}): SimVmSpec => ({
  name,
  guestId: 'debian12_64Guest',
  numCPUs: 1,
  memoryMB: 1024,
  powerState: 'poweredOff',
  disks: [{ capacityMiB: 8 }],
  nics: [{ network: 'VM Network' }],
  ...extra,
});

const VMS: SimVmSpec[] = [
  base('ok-1'),
  base('on-1', { powerState: 'poweredOn' }),
  base('snap-1', { snapshots: 1 }),
  base('indep-1', { disks: [{ capacityMiB: 8, mode: 'independent_persistent' }] }),
  base('nonpersistent-1', { disks: [{ capacityMiB: 8, mode: 'nonpersistent' }] }),
  base('rdm-1', { disks: [{ capacityMiB: 8 }, { capacityMiB: 8, rdm: 'physicalMode' }] }),
  base('shared-1', { disks: [{ capacityMiB: 8, sharing: 'sharingMultiWriter' }] }),
  base('pci-1', { devices: ['pciPassthrough'] }),
  base('sriov-1', { devices: ['sriovNic'] }),
  base('tpm-1', { devices: ['tpm'] }),
  base('usb-1', { devices: ['usb'] }),
  base('ft-1', { powerState: 'poweredOn', faultTolerance: true }),
  base('notools-1', { powerState: 'poweredOn', tools: 'notRunning', changeTrackingEnabled: true }),
  base('oldtools-1', { tools: 'old' }),
  base('xp-1', { guestId: 'winXPProGuest' }),
  base('huge-1', { numCPUs: 64, memoryMB: 1024 * 1024 }),
  base('twonic-1', { nics: [{ network: 'VM Network' }, { network: 'DC0_DVPG0' }] }),
  base('sb-1', { firmware: 'efi', secureBoot: true }),
  base('tmpl-1', { template: true }),
  base('nocbt-snap-1', { powerState: 'poweredOn', snapshots: 1 }),
];

const request = (vm: string, extra: Record<string, unknown> = {}, target: Record<string, unknown> = {}) => ({
  sourceId: 'sim',
  vm: { name: vm },
  target: { project: 'p-pre', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'net-a' }], ...target },
  guest: { convert: 'skip' },
  ...extra,
});

type Reason = { code: string; severity: string; message: string };

describe('preflight verdicts', () => {
  let env: MigrationEnv;
  let api: TestApi;

  beforeAll(async () => {
    env = await createMigrationEnv('preflight', { vms: VMS });
    await env.startWorker();
    api = await startApi(env, { users: [{ name: 'mem', projects: ['p-pre'], role: 'member' }, { name: 'other', projects: ['p-other'], role: 'member' }] });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  const verdict = async (body: Record<string, unknown>) => {
    const res = await api.as('mem').post('/preflight', body);
    expect(res.status).toBe(200);
    expect(res.data.verdicts).toHaveLength(1);
    return res.data.verdicts[0] as { verdict: string; reasons: Reason[]; flavor?: string; bytesToCopy?: number; estimate: { basis: string; reason?: string } };
  };
  const codes = (v: { reasons: Reason[] }, severity: string) => v.reasons.filter((r) => r.severity === severity).map((r) => r.code).sort();

  it.each([
    ['ok-1', 'cold', 'Pass', [], []],
    ['on-1', 'cold', 'Warn', [], ['vm.powered_on']],
    ['snap-1', 'cold', 'Fail', ['snapshots.exist'], []],
    ['indep-1', 'cold', 'Warn', [], ['disk.independent']],
    ['indep-1', 'warm', 'Fail', ['disk.independent'], ['cbt.disabled', 'vm.powered_off_warm']],
    ['nonpersistent-1', 'cold', 'Warn', [], ['disk.mode']],
    ['rdm-1', 'cold', 'Fail', ['disk.rdm'], []],
    ['shared-1', 'cold', 'Fail', ['disk.shared'], []],
    ['pci-1', 'cold', 'Warn', [], ['device.passthrough']],
    ['sriov-1', 'cold', 'Warn', [], ['device.sriov']],
    ['tpm-1', 'cold', 'Warn', [], ['device.tpm']],
    ['usb-1', 'cold', 'Warn', [], ['device.usb']],
    ['ft-1', 'cold', 'Fail', ['vm.fault_tolerance'], ['vm.powered_on']],
    ['notools-1', 'warm', 'Warn', [], ['tools.not_running']],
    ['oldtools-1', 'cold', 'Warn', [], ['tools.old']],
    ['huge-1', 'cold', 'Fail', ['flavor.none_fits'], []],
    ['twonic-1', 'cold', 'Fail', ['network.unmapped'], []],
    ['tmpl-1', 'cold', 'Fail', ['vm.template'], []],
    ['nocbt-snap-1', 'warm', 'Fail', ['snapshots.exist'], []],
    ['no-such-vm', 'cold', 'Fail', ['vm.not_found'], []],
  ])('%s (%s): %s with fail %j and warn %j', async (vm, kind, expected, fails, warns) => {
    const v = await verdict(request(vm, kind === 'warm' ? { kind: 'warm' } : {}));
    expect(v.verdict).toBe(expected);
    expect(codes(v, 'fail')).toEqual(fails);
    expect(codes(v, 'warn')).toEqual(warns);
    // Every reason says what it is about in a sentence.
    for (const r of v.reasons) expect(r.message.length).toBeGreaterThan(20);
  }, 60_000);

  it('judges the options against the VM and the target', async () => {
    expect(codes(await verdict(request('xp-1', { guest: { convert: 'auto' } })), 'warn')).toEqual(['guest.unsupported']);
    expect(codes(await verdict(request('xp-1', { guest: { convert: 'force' } })), 'fail')).toEqual(['guest.unsupported']);
    expect(await verdict(request('xp-1', { guest: { convert: 'skip' } }))).toMatchObject({ verdict: 'Pass' });
    const sb = await verdict(request('sb-1', {}, { machineType: 'pc-i440fx' }));
    expect(codes(sb, 'fail')).toEqual(['firmware.machine_type']);
    expect(sb.reasons[0].message).toMatch(/q35/);
    // The local target cannot inject a key pair or manage IPs: refused, not dropped.
    const keyed = await verdict(request('ok-1', {}, { keyName: 'ops', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'net-a', fixedIps: ['10.0.0.9'] }] }));
    expect(keyed.verdict).toBe('Fail');
    expect(keyed.reasons.filter((r) => r.code === 'option.unsupported').map((r) => r.message)).toEqual([
      expect.stringContaining('target.keyName'),
      expect.stringContaining('fixedIps'),
    ]);
    // No flavor asked for: the smallest that fits is proposed; one too small is refused.
    expect((await verdict(request('ok-1'))).flavor).toBe('m1.small');
    const small = await verdict(request('ok-1', {}, { flavor: 'm1.small' }));
    expect(small.verdict).toBe('Pass');
  }, 60_000);

  it('several VMs share one list of mappings: each is judged with those for its NICs, and one that matches no VM is refused for all', async () => {
    const both = { ...request('ok-1'), vm: undefined, vms: [{ name: 'ok-1' }, { name: 'twonic-1' }] };
    const mapped = (networks: unknown[]) => api.as('mem').post('/preflight', { ...both, target: { ...both.target, networks } });
    // twonic-1's second network is no NIC of ok-1: ok-1 is judged without that mapping.
    const fine = await mapped([{ sourceNetwork: 'VM Network', targetNetwork: 'net-a' }, { sourceNetwork: 'DC0_DVPG0', targetNetwork: 'net-b' }]);
    expect(fine.status).toBe(200);
    expect(fine.data.verdicts.map((v: { verdict: string }) => v.verdict)).toEqual(['Pass', 'Pass']);
    const typo = await mapped([{ sourceNetwork: 'VM Network', targetNetwork: 'net-a' }, { sourceNetwork: 'DC0_DVPG0', targetNetwork: 'net-b' }, { sourceNetwork: 'VM Netwrok', targetNetwork: 'net-c' }]);
    for (const v of typo.data.verdicts) expect(v.reasons).toContainEqual(expect.objectContaining({ code: 'network.unmapped', message: expect.stringContaining("network 'VM Netwrok'") }));
    // Without the second network's mapping, twonic-1 alone fails: its NIC on DC0_DVPG0 has none.
    const half = await mapped([{ sourceNetwork: 'VM Network', targetNetwork: 'net-a' }]);
    expect(half.data.verdicts.map((v: { verdict: string }) => v.verdict)).toEqual(['Pass', 'Fail']);
  }, 60_000);

  it('refuses to submit a VM that fails, naming its rules, and lets the others of the request go ahead', async () => {
    const one = await api.as('mem').post('/migrations', request('rdm-1'));
    expect(one.status).toBe(422);
    expect(one.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(one.data.detail).toMatch(/^preflight refused VM rdm-1: disk\.rdm: /);
    expect(one.data.reasons.map((r: Reason) => r.code)).toEqual(['disk.rdm']);
    expect((await api.as('mem').get('/migrations')).data.migrations).toEqual([]);

    const many = await api.as('mem').post('/migrations', { ...request('ok-1'), vm: undefined, vms: [{ name: 'shared-1' }, { name: 'on-1' }] });
    expect(many.status).toBe(202);
    expect(many.data.migrations.map((m: { status: number }) => m.status)).toEqual([422, 202]);
    expect(many.data.migrations[0].problem.detail).toMatch(/disk\.shared/);
    const id = many.data.migrations[1].id;
    const status = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(status.status).toBe('COMPLETED');
    // The verdict it was accepted with stays with it.
    expect(status.preflight).toMatchObject({ verdict: 'Warn', reasons: [{ code: 'vm.powered_on', severity: 'warn' }], flavor: 'm1.small' });
    expect(status.preflight.estimate).toMatchObject({ basis: 'none', reason: expect.stringMatching(/no cold migration has completed/) });
  }, 180_000);

  it('estimates the runtime from the migrations this deployment has completed', async () => {
    const v = await verdict(request('ok-1'));
    expect(v.bytesToCopy).toBe(8 << 20);
    expect(v.estimate).toMatchObject({ basis: 'measured', migrations: 1 });
    const e = v.estimate as unknown as { seconds: number; copySeconds: number; otherSeconds: number; bytesPerSecond: number };
    expect(e.bytesPerSecond).toBeGreaterThan(0);
    expect(e.seconds).toBe(e.copySeconds + e.otherSeconds);
    // Twice the bytes: twice the copy time at the measured rate.
    const twice = await api.as('mem').post('/preflight', { ...request('ok-1'), vm: undefined, vms: [{ name: 'ok-1' }, { name: 'oldtools-1' }] });
    expect(twice.data.estimate.copySeconds).toBeGreaterThanOrEqual(2 * e.copySeconds - 1);
    expect(twice.data.estimate.copySeconds).toBeLessThanOrEqual(2 * e.copySeconds + 1);
  }, 60_000);

  it("answers another project or source as not found, and a reader may ask but not submit", async () => {
    const res = await api.as('other').post('/preflight', request('ok-1'));
    expect(res.status).toBe(404);
    expect(res.data.detail).toBe("no project 'p-pre'");
    const bad = await api.as('mem').post('/preflight', { ...request('ok-1'), surprise: true });
    expect(bad.status).toBe(400);
  });
});
