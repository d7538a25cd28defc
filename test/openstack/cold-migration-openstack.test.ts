import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { call, issueToken } from '../../tools/openstack-lab/rest';
import axios, { type AxiosInstance } from 'axios';
import { KeystoneIdentity } from '../../identity/keystone-identity';
import { startApi, waitForMigration } from '../harness/api-server';
import { recordRunHistories } from '../harness/record-histories';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { createLabProject, resourcesOfMigration, type LabProject } from '../harness/openstack-lab';
import { leadingSha } from './volume-bytes';

const MiB = 1024 * 1024;


describe('cold migration into a real OpenStack (Keystone, Cinder NFS, Neutron, Nova), through the API', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;
  let p: LabProject;
  let other: LabProject;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-cold-'));

  beforeAll(async () => {
    p = await createLabProject('cold', dir);
    other = await createLabProject('bystander', dir);
    env = await createMigrationEnv(
      'os-cold',
      {
        vms: [
          {
            name: 'app01',
            guestId: 'debian11_64Guest',
            firmware: 'bios',
            numCPUs: 1,
            memoryMB: 512,
            powerState: 'poweredOn',
            // 100 MiB: not a whole GiB, as many real disks are not; Cinder rounds the volume up.
            disks: [{ capacityMiB: 100 }, { capacityMiB: 20 }],
            nics: [
              // VMware Tools report its address: the migration keeps it (keepIps).
              { network: 'VM Network', macAddress: '00:50:56:11:22:01', ipAddresses: ['192.0.2.77', 'fe80::250:56ff:fe11:2201'] },
              { network: 'VM Network', macAddress: '00:50:56:11:22:02' },
            ],
          },
        ],
      },
      { diskImages: { app01: 100 * MiB }, targets: { lab: p.targetConfig() }, defaultTarget: 'lab' },
    );
    await env.startWorker();
    // Callers are who Keystone says they are: the project's member, with their own token.
    api = await startApi(env, { identity: new KeystoneIdentity({ backend: 'keystone', authUrl: p.lab.authUrl, insecure: false, cacheSeconds: 60, projectDomain: 'Default' }) });
  }, 10 * 60_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lands the disks in Cinder volumes, byte for byte, and the server with ports carrying the source MACs, in its project only', async () => {
    const sourceSha = await sha256File(env.images.app01);
    // A key pair of the target's user, for the server.
    const member = await issueToken(p.lab.authUrl, { username: p.username, password: p.password, projectName: p.projectName });
    const novaUrl = member.body.token.catalog!.find((e) => e.type === 'compute')!.endpoints.find((e) => e.interface === 'public')!.url;
    await call(member.id, 'POST', `${novaUrl}/os-keypairs`, { keypair: { name: 'migrated-key' } });
    const http: AxiosInstance = axios.create({ baseURL: api.url, validateStatus: () => true, headers: { 'X-Auth-Token': member.id } });
    expect((await http.get('/whoami')).data).toEqual({ user: p.username, projects: [p.projectName], role: 'member', via: 'keystone' });
    const submit = await http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'app01' },
      target: {
        name: 'lab',
        project: p.projectName,
        flavor: 'm1.tiny',
        volumeType: p.lab.volumeType,
        availabilityZone: p.lab.zones.fake,
        volumeAvailabilityZone: 'nova',
        start: true,
        keyName: 'migrated-key',
        deleteVolumesOnTermination: true,
        networks: [
          {
            sourceMac: '00:50:56:11:22:01',
            targetNetwork: p.network.name,
            targetSubnet: p.network.subnetName,
            preserveMac: true,
            keepIps: true,
            securityGroups: ['default'],
            floatingIpNetwork: 'lab-public',
          },
          // The shared network, where the project may not choose a MAC: the cloud assigns one.
          { sourceMac: '00:50:56:11:22:02', targetNetwork: 'lab-net', preserveMac: false },
        ],
      },
      // The disks hold a synthetic layout, no OS: the guest path is test/openstack/guest-boot-openstack.test.ts.
      guest: { convert: 'skip' },
    });
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;
    const status = await waitForMigration(http, id, { timeoutMs: 300_000 });
    expect(status.submittedBy).toBe(p.username);
    // Another project's member (a valid Keystone token) cannot see it; no token at all is a 401.
    const bystander = await issueToken(other.lab.authUrl, { username: other.username, password: other.password, projectName: other.projectName });
    const asBystander = axios.create({ baseURL: api.url, validateStatus: () => true, headers: { Authorization: `Bearer ${bystander.id}` } });
    expect((await asBystander.get(`/migrations/${id}`)).status).toBe(404);
    expect((await asBystander.get('/migrations')).data.migrations).toEqual([]);
    expect((await api.anonymous.get(`/migrations/${id}`)).status).toBe(401);
    expect({ status: status.status, stage: status.stage, error: status.error }).toEqual({ status: "COMPLETED", stage: "Completed", error: undefined });
    // Started, as asked (target.start).
    expect(status.instance).toMatchObject({ target: 'lab', project: p.projectName, name: 'app01', status: 'ACTIVE' });

    // Each volume's bytes, read from the file behind its Cinder attachment (volume-<id> on the NFS share).
    const mine = await resourcesOfMigration(p, id);
    expect(mine.volumes).toHaveLength(2);
    const byDisk = new Map(mine.volumes.map((v) => [v.metadata['vmigrate.disk'], v]));
    const disk0 = byDisk.get('2000')!;
    expect(disk0).toMatchObject({ size: 1, volume_type: p.lab.volumeType, availability_zone: 'nova', bootable: 'true', 'os-vol-tenant-attr:tenant_id': p.projectId });
    expect(disk0.metadata).toMatchObject({ 'vmigrate.migration': id, 'vmigrate.size_bytes': String(100 * MiB), sourceVm: 'app01' });
    expect(disk0.volume_image_metadata).toMatchObject({ hw_disk_bus: 'virtio', hw_machine_type: 'pc', hw_firmware_type: 'bios', hw_vif_model: 'virtio' });
    const onShare = await leadingSha(path.join(p.lab.shareExportDir, `volume-${disk0.id}`), 100 * MiB);
    expect(onShare).toEqual({ sha: sourceSha, tailZero: true });
    const flat1 = path.join(env.sim.datastoreDir, env.sim.vms[0].disks[1].flatPath);
    expect((await leadingSha(path.join(p.lab.shareExportDir, `volume-${byDisk.get('2001')!.id}`), 20 * MiB)).sha).toBe(await sha256File(flat1));

    // The server boots from the first volume; its ports are on the mapped network with the source MACs.
    expect(mine.servers).toHaveLength(1);
    const server = mine.servers[0];
    expect(server).toMatchObject({ id: status.instance.id, name: 'app01', tenant_id: p.projectId, 'OS-EXT-AZ:availability_zone': p.lab.zones.fake });
    expect(server['os-extended-volumes:volumes_attached'].map((v: { id: string }) => v.id).sort()).toEqual(mine.volumes.map((v) => v.id).sort());
    // Asked for: the volumes go with the server (target.deleteVolumesOnTermination; by default they outlive it).
    expect(server['os-extended-volumes:volumes_attached'].map((v: { delete_on_termination: boolean }) => v.delete_on_termination)).toEqual([true, true]);
    expect(server.key_name).toBe('migrated-key');
    expect(server.metadata).toMatchObject({ migrationId: id, sourceVm: 'app01' });
    expect(mine.ports).toHaveLength(2);
    const [own, shared] = [mine.ports.find((x) => x.network_id === p.network.id)!, mine.ports.find((x) => x.network_id === p.lab.networkId)!];
    expect(own.mac_address).toBe('00:50:56:11:22:01');
    expect(shared.mac_address).not.toBe('00:50:56:11:22:02');
    expect(mine.ports.every((x) => x.device_id === server.id && x.project_id === p.projectId)).toBe(true);
    // The address the guest had (its link-local one is not kept).
    expect(own.fixed_ips.map((f: { ip_address: string }) => f.ip_address)).toEqual(['192.0.2.77']);
    expect(status.target.networks[0]).toMatchObject({ sourceMac: '00:50:56:11:22:01', fixedIps: ['192.0.2.77'] });
    expect(status.target.networks[0].keepIps).toBeUndefined();
    // Its security group and floating IP, as mapped.
    const token = await p.adminToken();
    const neutron = await p.endpoint('network');
    const groups = await call<{ security_groups: Array<{ id: string }> }>(token, 'GET', `${neutron}/v2.0/security-groups?name=default&project_id=${p.projectId}`);
    expect(own.security_groups).toEqual([groups.security_groups[0].id]);
    const fips = await call<{ floatingips: any[] }>(token, 'GET', `${neutron}/v2.0/floatingips?port_id=${own.id}`);
    expect(fips.floatingips).toHaveLength(1);
    expect(fips.floatingips[0]).toMatchObject({ floating_network_id: p.lab.publicNetworkId, fixed_ip_address: '192.0.2.77', project_id: p.projectId });
    expect(fips.floatingips[0].floating_ip_address).toMatch(/^198\.51\.100\./);

    // Nothing of it is in any other project, and the bystander project has nothing at all.
    const nova = await other.endpoint('compute');
    const servers = await call<{ servers: any[] }>(token, 'GET', `${nova}/servers/detail?all_tenants=1&project_id=${other.projectId}`);
    expect(servers.servers).toEqual([]);
    const volumes = await call<{ volumes: any[] }>(token, 'GET', `${await other.endpoint('volumev3')}/volumes/detail?all_tenants=1&project_id=${other.projectId}`);
    expect(volumes.volumes).toEqual([]);

    // No secret reached the history: not the cloud password, not a Keystone token.
    const historyText = JSON.stringify(await env.client.workflow.getHandle(id).fetchHistory());
    const decoded = [...historyText.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8')).join('\n');
    expect(decoded).toContain(p.projectName);
    expect(decoded).not.toContain(p.password);
    expect(decoded).not.toMatch(/gAAAAA[A-Za-z0-9_-]{40,}/); // a Fernet token

    // Re-record the replay test's history of a migration into OpenStack (VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories).
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-openstack-v1'));

    // The MAC is now taken on that network: preflight of the same VM again refuses it, naming the port.
    const again = await http.post('/preflight', { sourceId: 'sim', vm: { name: 'app01' }, target: { name: 'lab', project: p.projectName, flavor: 'm1.tiny', volumeType: p.lab.volumeType, networks: [{ sourceMac: '00:50:56:11:22:01', targetNetwork: p.network.name, preserveMac: true }, { sourceMac: '00:50:56:11:22:02', targetNetwork: 'lab-net' }] }, guest: { convert: 'skip' } });
    expect(again.status).toBe(200);
    const conflict = again.data.verdicts[0].reasons.filter((r: { code: string }) => r.code === 'network.mac_conflict');
    expect(conflict).toEqual([expect.objectContaining({ severity: 'fail', message: expect.stringContaining(`MAC 00:50:56:11:22:01 is already used on network '${p.network.name}' by port`) })]);
    expect(conflict[0].message).toContain(own.id);

    // The events of the product's lifecycle, in order.
    const names = (await http.get(`/migrations/${id}/events`)).data.events.map((e: { name: string }) => e.name);
    const order = ['source.powered_off', 'export.started', 'write.started', 'guest_fixes.started', 'finalize.completed', 'migration.completed'];
    const firstIndex = order.map((n) => names.indexOf(n));
    expect(firstIndex.every((i) => i >= 0)).toBe(true);
    expect(firstIndex).toEqual([...firstIndex].sort((a, b) => a - b));
  }, 400_000);
});
