import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, issueToken, type CatalogEntry } from '../../tools/openstack-lab/rest';
import { openStackLab, type LabInfo } from '../harness/openstack-lab';
import { until } from '../harness/until';

/**
 * The OpenStack lab (tools/openstack-lab) is a real OpenStack: Keystone, Glance, Placement, Nova, Neutron and Cinder
 * answer over REST; a member of a new project gets a token; an NFS-backed volume is a file on the share; servers
 * boot from volumes with fixed-MAC ports on the fake computes and on the libvirt/qemu one.
 */

jest.setTimeout(300_000);

let lab: LabInfo;
let admin: { token: string; projectId: string; catalog: CatalogEntry[] };
const log = (s: string) => process.stdout.write(`[lab] ${s}\n`);

function endpoint(type: string): string {
  const e = admin.catalog.find((c) => c.type === type)?.endpoints.find((x) => x.interface === 'public' && x.region === lab.region);
  if (!e) throw new Error(`no public ${type} endpoint`);
  return e.url.replace('%(project_id)s', admin.projectId).replace(/\/$/, '');
}


async function volumeStatus(token: string, cinder: string, id: string, want: string): Promise<any> {
  return until(`volume ${id} ${want}`, async () => {
    const v = (await call(token, 'GET', `${cinder}/volumes/${id}`)).volume;
    if (v.status === 'error') throw new Error(`volume ${id} went to error`);
    return v.status === want ? v : undefined;
  });
}

async function serverActive(token: string, nova: string, id: string): Promise<any> {
  return until(
    `server ${id} ACTIVE`,
    async () => {
      const s = (await call(token, 'GET', `${nova}/servers/${id}`)).server;
      if (s.status === 'ERROR') throw new Error(`server ${id} went to ERROR: ${JSON.stringify(s.fault)}`);
      return s.status === 'ACTIVE' ? s : undefined;
    },
    180_000,
  );
}

async function serverGone(token: string, nova: string, id: string): Promise<void> {
  await until(`server ${id} deleted`, async () => {
    const res = await fetch(`${nova}/servers/${id}`, { headers: { 'x-auth-token': token } });
    await res.arrayBuffer();
    return res.status === 404 ? true : undefined;
  });
}

beforeAll(async () => {
  // The run's shared lab (test/harness/openstack-lab.ts); the global teardown stops it and fails if it cannot unmount.
  lab = await openStackLab();
  const t = await issueToken(lab.authUrl, lab.admin);
  admin = { token: t.id, projectId: t.body.token.project!.id, catalog: t.body.token.catalog! };
}, 600_000);

test('the admin password issues a token whose catalog has all six services', async () => {
  const types = admin.catalog.map((c) => c.type);
  for (const t of ['identity', 'image', 'placement', 'compute', 'network', 'volumev3']) expect(types).toContain(t);
  for (const c of admin.catalog) {
    expect(c.endpoints.map((e) => e.interface).sort()).toEqual(['admin', 'internal', 'public']);
    for (const e of c.endpoints) expect(e.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
  }
  expect(lab.env).toMatchObject({ OS_AUTH_URL: lab.authUrl, OS_USERNAME: 'admin', OS_IDENTITY_API_VERSION: '3' });
});

test('servers boot from NFS volumes with fixed-MAC ports, on a fake compute and on the libvirt compute', async () => {
  const keystone = lab.authUrl;
  const nova = endpoint('compute');
  const neutron = endpoint('network');
  const cinderAdmin = endpoint('volumev3');
  const suffix = Date.now().toString(36);

  // A project and a member user of it.
  const project = (await call(admin.token, 'POST', `${keystone}/projects`, { project: { name: `smoke-${suffix}`, domain_id: 'default' } })).project;
  const password = `pw-${suffix}`;
  const user = (await call(admin.token, 'POST', `${keystone}/users`, { user: { name: `smoke-${suffix}`, password, domain_id: 'default' } })).user;
  const roles = (await call(admin.token, 'GET', `${keystone}/roles?name=member`)).roles;
  expect(roles).toHaveLength(1);
  await call(admin.token, 'PUT', `${keystone}/projects/${project.id}/users/${user.id}/roles/${roles[0].id}`);
  const member = await issueToken(keystone, { username: user.name, password, projectName: project.name });
  expect(member.body.token.project!.id).toBe(project.id);
  const tok = member.id;
  const cinder = `${cinderAdmin.replace(admin.projectId, project.id)}`;

  const created: { servers: string[]; volumes: string[]; ports: string[] } = { servers: [], volumes: [], ports: [] };
  let passed = false;
  try {
    // A 1 GiB volume of type nfs: a sparse file volume-<id> on the share.
    const vol = (await call(tok, 'POST', `${cinder}/volumes`, { volume: { size: 1, volume_type: lab.volumeType, name: `boot-${suffix}` } })).volume;
    created.volumes.push(vol.id);
    const ready = await volumeStatus(tok, cinder, vol.id, 'available');
    expect(ready.volume_type).toBe(lab.volumeType);
    const file = path.join(lab.shareExportDir, `volume-${vol.id}`);
    expect(statSync(file).size).toBe(1024 ** 3);
    // An empty volume is not marked bootable; a migrated disk would be, once written.
    const setBootable = (id: string) => call(tok, 'POST', `${cinder}/volumes/${id}/action`, { 'os-set_bootable': { bootable: true } });
    await setBootable(vol.id);

    // A port with a fixed MAC on the shared lab network (setting a MAC takes the admin role), in the member's project.
    const nets = (await call(tok, 'GET', `${neutron}/v2.0/networks?name=lab-net`)).networks;
    expect(nets).toHaveLength(1);
    const mac = 'fa:16:3e:5a:00:01';
    const port = (await call(admin.token, 'POST', `${neutron}/v2.0/ports`, {
      port: { network_id: nets[0].id, mac_address: mac, project_id: project.id, name: `smoke-${suffix}` },
    })).port;
    created.ports.push(port.id);
    expect(port.mac_address).toBe(mac);
    expect(port.fixed_ips[0].ip_address).toMatch(/^192\.0\.2\./);

    const flavors = (await call(tok, 'GET', `${nova}/flavors`)).flavors.map((f: { name: string }) => f.name);
    expect(flavors).toEqual(expect.arrayContaining(['m1.tiny', 'm1.small', 'm1.medium']));
    const boot = (name: string, zone: string, volumeId: string, portId: string) =>
      call(tok, 'POST', `${nova}/servers`, {
        server: {
          name,
          flavorRef: '1',
          availability_zone: zone,
          networks: [{ port: portId }],
          block_device_mapping_v2: [
            { boot_index: 0, uuid: volumeId, source_type: 'volume', destination_type: 'volume', delete_on_termination: false },
          ],
        },
      });
    const s1 = (await boot(`fake-${suffix}`, lab.zones.fake, vol.id, port.id)).server;
    created.servers.push(s1.id);
    const active = await serverActive(admin.token, nova, s1.id);
    expect(lab.computeHosts.fake).toContain(active['OS-EXT-SRV-ATTR:host']);
    expect(active['OS-EXT-AZ:availability_zone']).toBe(lab.zones.fake);
    const addrs = Object.values(active.addresses as Record<string, Array<{ 'OS-EXT-IPS-MAC:mac_addr': string }>>).flat();
    expect(addrs.map((a) => a['OS-EXT-IPS-MAC:mac_addr'])).toEqual([mac]);
    const bound = (await call(admin.token, 'GET', `${neutron}/v2.0/ports/${port.id}`)).port;
    expect(bound).toMatchObject({ device_id: s1.id, status: 'ACTIVE', 'binding:vif_type': 'bridge', 'binding:host_id': active['OS-EXT-SRV-ATTR:host'] });
    const inUse = await volumeStatus(tok, cinder, vol.id, 'in-use');
    expect(inUse.attachments.map((a: { server_id: string }) => a.server_id)).toEqual([s1.id]);

    // A second volume attached to the running server through Nova.
    const data = (await call(tok, 'POST', `${cinder}/volumes`, { volume: { size: 1, name: `data-${suffix}` } })).volume;
    created.volumes.push(data.id);
    expect((await volumeStatus(tok, cinder, data.id, 'available')).volume_type).toBe(lab.volumeType);
    const att = (await call(tok, 'POST', `${nova}/servers/${s1.id}/os-volume_attachments`, { volumeAttachment: { volumeId: data.id } }))
      .volumeAttachment;
    expect(att.volumeId).toBe(data.id);
    expect((await volumeStatus(tok, cinder, data.id, 'in-use')).attachments[0].server_id).toBe(s1.id);
    await call(tok, 'DELETE', `${nova}/servers/${s1.id}/os-volume_attachments/${data.id}`);
    await volumeStatus(tok, cinder, data.id, 'available');

    if (lab.zones.libvirt) {
      // A real qemu guest: an empty 1 GiB volume is enough to reach ACTIVE (the guest finds nothing to boot).
      const lvVol = (await call(tok, 'POST', `${cinder}/volumes`, { volume: { size: 1, name: `lv-${suffix}` } })).volume;
      created.volumes.push(lvVol.id);
      await volumeStatus(tok, cinder, lvVol.id, 'available');
      await setBootable(lvVol.id);
      const lvMac = 'fa:16:3e:5a:00:02';
      const lvPort = (await call(admin.token, 'POST', `${neutron}/v2.0/ports`, {
        port: { network_id: nets[0].id, mac_address: lvMac, project_id: project.id },
      })).port;
      created.ports.push(lvPort.id);
      const s2 = (await boot(`lv-${suffix}`, lab.zones.libvirt, lvVol.id, lvPort.id)).server;
      created.servers.push(s2.id);
      const lv = await serverActive(admin.token, nova, s2.id);
      // The scheduler picks one of the zone's libvirt computes; the guest runs in that one's libvirtd.
      const host = lab.libvirtHosts.find((h) => h.host === lv['OS-EXT-SRV-ATTR:host']);
      expect(host).toBeDefined();
      expect(lv['OS-EXT-AZ:availability_zone']).toBe(lab.zones.libvirt);
      const domain = lv['OS-EXT-SRV-ATTR:instance_name'];
      const xml = execFileSync('virsh', ['-c', host!.uri, 'dumpxml', domain], { encoding: 'utf8' });
      expect(execFileSync('virsh', ['-c', host!.uri, 'domstate', domain], { encoding: 'utf8' }).trim()).toBe('running');
      expect(xml).toContain(`<mac address='${lvMac}'/>`);
      expect(xml).toContain(`volume-${lvVol.id}`);
    }
    passed = true;
  } finally {
    // A cleanup failure is reported after (never instead of) the test's own.
    try {
      const cinderOwn = cinderAdmin;
      for (const id of created.servers) await call(admin.token, 'DELETE', `${nova}/servers/${id}`, undefined, { expect: [204, 404] });
      for (const id of created.servers) await serverGone(admin.token, nova, id);
      for (const id of created.ports) await call(admin.token, 'DELETE', `${neutron}/v2.0/ports/${id}`, undefined, { expect: [204, 404] });
      for (const id of created.volumes) {
        await volumeStatus(tok, cinder, id, 'available').catch(() => undefined);
        await call(admin.token, 'DELETE', `${cinderOwn}/volumes/${id}`, undefined, { expect: [202, 404] });
      }
      await until('volumes deleted', async () => {
        const left = (await call(tok, 'GET', `${cinder}/volumes`)).volumes;
        return left.length === 0 ? true : undefined;
      });
      for (const id of created.volumes) expect(existsSync(path.join(lab.shareExportDir, `volume-${id}`))).toBe(false);
      await call(admin.token, 'DELETE', `${keystone}/users/${user.id}`);
      await call(admin.token, 'DELETE', `${keystone}/projects/${project.id}`);
    } catch (err) {
      if (passed) throw err;
      log(`cleanup after the failure also failed: ${(err as Error).message}`);
    }
  }
});

test("a Cinder attachment with a host connector gives the NFS export and file, which mount.nfs mounts here", async () => {
  const cinder = endpoint('volumev3');
  const vol = (await call(admin.token, 'POST', `${cinder}/volumes`, { volume: { size: 1, name: 'connector-check' } })).volume;
  await volumeStatus(admin.token, cinder, vol.id, 'available');
  const mnt = mkdtempSync(path.join(os.tmpdir(), 'lab-nfs-'));
  try {
    const connector = { platform: 'x86_64', os_type: 'linux', host: os.hostname(), ip: '127.0.0.1', initiator: 'iqn.2004-10.org.debian:lab-smoke', multipath: false };
    const att = (await call(admin.token, 'POST', `${cinder}/attachments`, { attachment: { volume_uuid: vol.id, connector } }, {
      headers: { 'OpenStack-API-Version': 'volume 3.44' },
    })).attachment;
    log(`connection_info: ${JSON.stringify(att.connection_info)}`);
    expect(att.connection_info).toMatchObject({ driver_volume_type: 'nfs', name: `volume-${vol.id}`, export: expect.stringMatching(/^127\.0\.0\.1:\//) });
    execFileSync('mount', ['-t', 'nfs', att.connection_info.export, mnt]);
    try {
      const f = path.join(mnt, att.connection_info.name);
      expect(statSync(f).size).toBe(1024 ** 3);
      const readBack = execFileSync('sh', ['-c', `printf lab-bytes | dd of='${f}' bs=1 seek=4096 conv=notrunc status=none && dd if='${f}' bs=1 skip=4096 count=9 status=none`], { encoding: 'utf8' });
      expect(readBack).toBe('lab-bytes');
      // The same bytes, seen through the share's export on this host.
      const buf = Buffer.alloc(9);
      const h = openSync(path.join(lab.shareExportDir, att.connection_info.name), 'r');
      readSync(h, buf, 0, 9, 4096);
      closeSync(h);
      expect(buf.toString()).toBe('lab-bytes');
    } finally {
      execFileSync('umount', [mnt]);
    }
    await call(admin.token, 'DELETE', `${cinder}/attachments/${att.id}`, undefined, { headers: { 'OpenStack-API-Version': 'volume 3.44' } });
    await volumeStatus(admin.token, cinder, vol.id, 'available');
  } finally {
    rmSync(mnt, { recursive: true, force: true });
    await call(admin.token, 'DELETE', `${cinder}/volumes/${vol.id}`, undefined, { expect: [202, 404] });
  }
});
