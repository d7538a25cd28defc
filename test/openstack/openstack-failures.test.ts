import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call } from '../../tools/openstack-lab/rest';
import { startApi, waitForMigration } from '../harness/api-server';
import { recordRunHistories } from '../harness/record-histories';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { createLabProject, resourcesOfMigration, type LabProject } from '../harness/openstack-lab';

const MiB = 1024 * 1024;
const brokenType = `broken-${process.pid}-${Date.now().toString(36)}`;

/** Fails fast with a reason an operator can act on, and leaves nothing behind in the cloud. */
describe('failures in a real OpenStack target', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;
  const projects: Record<string, LabProject> = {};
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-fail-'));

  beforeAll(async () => {
    writeFileSync(path.join(dir, 'wrong.password'), 'not-the-password');
    for (const name of ['cinderquota', 'novaquota', 'fipquota', 'badauth', 'nonet', 'broken']) projects[name] = await createLabProject(name, dir);
    const admin = await projects.cinderquota.adminToken();
    // Cinder: one GiB in all; the VM's two disks need a (rounded-up) GiB each.
    await call(admin, 'PUT', `${await projects.cinderquota.endpoint('volumev3')}/os-quota-sets/${projects.cinderquota.projectId}`, { quota_set: { gigabytes: 1 } });
    // Nova: no instances at all; the volumes and ports are made before the server is refused.
    await call(admin, 'PUT', `${await projects.novaquota.endpoint('compute')}/os-quota-sets/${projects.novaquota.projectId}`, { quota_set: { instances: 0 } });
    // Neutron: no floating IPs; preflight does not judge them, so the migration meets the refusal when it makes one.
    await call(admin, 'PUT', `${await projects.fipquota.endpoint('network')}/v2.0/quotas/${projects.fipquota.projectId}`, { quota: { floatingip: 0 } });
    // A volume type whose backend does not exist: Cinder accepts the volume, then its scheduler puts it in error.
    const cinder = await projects.broken.endpoint('volumev3');
    const type = await call<{ volume_type: { id: string } }>(admin, 'POST', `${cinder}/types`, { volume_type: { name: brokenType, 'os-volume-type-access:is_public': true } });
    await call(admin, 'POST', `${cinder}/types/${type.volume_type.id}/extra_specs`, { extra_specs: { volume_backend_name: 'no-such-backend' } });
    const vm = (name: string, disks: number[]) => ({
      name,
      guestId: 'debian11_64Guest',
      firmware: 'bios' as const,
      numCPUs: 1,
      memoryMB: 512,
      powerState: 'poweredOff' as const,
      disks: disks.map((capacityMiB) => ({ capacityMiB })),
      nics: [{ network: 'VM Network' }],
    });
    env = await createMigrationEnv('os-fail', { vms: [vm('twodisks', [64, 32]), vm('onedisk', [16]), vm('fipvm', [16]), vm('authvm', [8]), vm('netvm', [8]), vm('typevm', [8]), vm('brokenvm', [8])] }, {
      targets: {
        cinderquota: projects.cinderquota.targetConfig(),
        novaquota: projects.novaquota.targetConfig(),
        fipquota: projects.fipquota.targetConfig(),
        badauth: { ...projects.badauth.targetConfig(), auth: { method: 'password', username: projects.badauth.username, password: { file: path.join(dir, 'wrong.password') } } },
        nonet: projects.nonet.targetConfig(),
        broken: projects.broken.targetConfig(),
      },
    });
    await env.startWorker();
    api = await startApi(env);
  }, 10 * 60_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const request = (target: string, vm: string, network = 'proj-net', floatingIpNetwork?: string, volumeType?: string) => ({
    sourceId: 'sim',
    vm: { name: vm },
    target: { name: target, project: projects[target].projectName, flavor: 'm1.tiny', volumeType: volumeType ?? projects[target].lab.volumeType, networks: [{ sourceNetwork: 'VM Network', targetNetwork: network, preserveMac: true, floatingIpNetwork }] },
    guest: { convert: 'skip' },
  });

  async function migrate(target: string, vm: string, network = 'proj-net', floatingIpNetwork?: string, volumeType?: string) {
    const submit = await api.http.post('/migrations', request(target, vm, network, floatingIpNetwork, volumeType));
    expect(submit.status).toBe(202);
    const status = await waitForMigration(api.http, submit.data.id, { timeoutMs: 300_000 });
    return { id: submit.data.id as string, status, p: projects[target] };
  }

  /** Preflight refuses the submission (422); nothing is started or made. */
  async function refused(target: string, vm: string, network = 'proj-net', floatingIpNetwork?: string, volumeType?: string) {
    const submit = await api.http.post('/migrations', request(target, vm, network, floatingIpNetwork, volumeType));
    expect(submit.status).toBe(422);
    return (submit.data.reasons as Array<{ code: string; severity: string; message: string }>).filter((r) => r.severity === 'fail');
  }

  it('refuses at preflight a migration over the project quota (Cinder gigabytes, Nova instances), naming the quota', async () => {
    const [cinder, nova] = await Promise.all([refused('cinderquota', 'twodisks'), refused('novaquota', 'onedisk', 'proj-net', 'lab-public')]);
    // Each disk and the clone the conversion writes count: 2 × (1 + 1) GiB of a 1 GiB quota.
    expect(cinder).toEqual([{ code: 'quota.exceeded', severity: 'fail', message: "twodisks needs 4 GiB of the project's gigabytes quota, which has 1 GiB left; raise the quota or free some" }]);
    expect(nova).toEqual([{ code: 'quota.exceeded', severity: 'fail', message: "onedisk needs 1 of the project's instances quota, which has 0 left; raise the quota or free some" }]);
    expect((await api.http.get('/migrations', { params: { project: projects.cinderquota.projectName } })).data.migrations).toEqual([]);
  }, 120_000);

  it('names a quota met while creating resources (Neutron floating IPs), fails at once, and leaves nothing behind', async () => {
    const run = await migrate('fipquota', 'fipvm', 'proj-net', 'lab-public');
    expect(run.status).toMatchObject({ status: 'FAILED', stage: 'Failed' });
    expect(run.status.error).toMatch(/floating ?ip.*\(quota: floatingip\); raise the project's quota or free some/i);
    expect(await resourcesOfMigration(run.p, run.id)).toEqual({ volumes: [], ports: [], servers: [], floatingIps: [] });
    // Quota errors are not retried: the failing activity ran once.
    const history = await env.client.workflow.getHandle(run.id).fetchHistory();
    const failed = history.events!.filter((e) => e.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type === 'QuotaExceededError');
    expect(failed).toHaveLength(1);
    expect(failed[0].activityTaskFailedEventAttributes!.failure!.applicationFailureInfo!.nonRetryable).toBe(true);
    // Re-record the replay test's history of a failure that releases the target (VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories).
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, run.id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-release-v1'));
  }, 400_000);

  it('a volume Cinder puts in error fails the migration with Cinder\'s reason, and is removed', async () => {
    const run = await migrate('broken', 'brokenvm', 'proj-net', undefined, brokenType);
    expect(run.status).toMatchObject({ status: 'FAILED' });
    expect(run.status.error).toMatch(/^volume \S+-disk0 \(\S+\) went to error: .*(no valid backend|available weighted backend)/i);
    expect(await resourcesOfMigration(run.p, run.id)).toEqual({ volumes: [], ports: [], servers: [], floatingIps: [] });
  }, 300_000);

  it('refuses bad credentials, an unknown network and an unknown volume type at preflight, before the source is touched', async () => {
    const [auth, net, type] = await Promise.all([refused('badauth', 'authvm'), refused('nonet', 'netvm', 'no-such-net'), refused('nonet', 'typevm', 'proj-net', undefined, 'no-such-type')]);
    expect(type).toEqual([expect.objectContaining({ code: 'target.not_found', message: expect.stringMatching(/^volume type 'no-such-type' does not exist; available: .*\bnfs\b/) })]);
    expect(auth).toEqual([expect.objectContaining({ code: 'target.auth', message: expect.stringMatching(/^Keystone at http:\/\/127\.0\.0\.1:\d+\/v3 refused the target's credentials for project '[^']+'.*check the user, password or application credential/) })]);
    expect(net).toEqual([expect.objectContaining({ code: 'target.not_found', message: expect.stringMatching(/^network 'no-such-net' does not exist in project [^ ]+ \(or is not shared with it\)/) })]);
    expect(await env.powerState('authvm')).toBe('poweredOff');
  }, 300_000);
});
