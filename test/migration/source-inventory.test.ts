/**
 * Sources and their inventory through the real API, dev server, worker and simulator: a simulator with several hosts,
 * two datastores, folders and ~50 VMs; every inventory field, paging, filters, the short cache, connectivity checks
 * (a source with a password it refuses is reported unreachable with vSphere's reason), and project scoping.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';
import type { SimVmSpec } from '../../tools/vcsim/launch';
import { VimClient } from '../../vsphere/vim-client';

const HOSTS = ['DC0_H0', 'DC0_C0_H0', 'DC0_C0_H1', 'DC0_C0_H2'];
const FOLDERS = ['prod/web', 'prod/db', 'test', ''];

function appVm(i: number): SimVmSpec {
  return {
    name: `app-${i}`,
    guestId: i % 3 === 0 ? 'windows2019srv_64Guest' : 'debian12_64Guest',
    numCPUs: 1 + (i % 4),
    memoryMB: 512 * (1 + (i % 3)),
    powerState: i % 2 === 0 ? 'poweredOn' : 'poweredOff',
    host: HOSTS[i % 4],
    folder: FOLDERS[i % 4],
    disks: i % 5 === 0 ? [{ capacityMiB: 2 }, { capacityMiB: 1, datastore: 'LocalDS_1' }] : [{ capacityMiB: 1 }],
    nics: [{ network: 'VM Network', ...(i % 2 === 0 ? { ipAddresses: [`10.0.${i}.10`] } : {}) }],
  };
}

const odd: SimVmSpec = {
  name: 'odd-1',
  guestId: 'rhel8_64Guest',
  firmware: 'efi',
  secureBoot: true,
  numCPUs: 4,
  memoryMB: 8192,
  powerState: 'poweredOn',
  host: 'DC0_C0_H1',
  folder: 'legacy/finance',
  changeTrackingEnabled: true,
  snapshots: 2,
  tools: 'old',
  faultTolerance: true,
  devices: ['tpm', 'usb', 'pciPassthrough'],
  disks: [
    { capacityMiB: 4, thick: true },
    { capacityMiB: 2, mode: 'independent_persistent', datastore: 'LocalDS_1' },
    { capacityMiB: 2, sharing: 'sharingMultiWriter' },
    { capacityMiB: 2, rdm: 'physicalMode' },
  ],
  nics: [
    { network: 'VM Network', macAddress: '00:50:56:aa:bb:01', ipAddresses: ['192.0.2.15', 'fe80::250:56ff:feaa:bb01'] },
    { network: 'DC0_DVPG0', adapterType: 'e1000e', macAddress: '00:50:56:aa:bb:02' },
  ],
};

const VMS = [...Array.from({ length: 48 }, (_, i) => appVm(i)), odd];

/** The simulator's certificate as a TLS client sees it: PEM and thumbprints (SHA-1 as vSphere shows them). */
async function serverCertificate(url: string): Promise<{ pem: string; sha1: string; sha256: string }> {
  const u = new URL(url);
  const der = await new Promise<Buffer>((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().raw);
      s.end();
    });
    s.once('error', reject);
  });
  const hex = (alg: string) => createHash(alg).update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
  return { pem: new X509Certificate(der).toString(), sha1: hex('sha1'), sha256: hex('sha256') };
}

describe('sources and the inventory', () => {
  let env: MigrationEnv;
  let api: TestApi;

  beforeAll(async () => {
    env = await createMigrationEnv('inventory', { datastores: 2, vms: VMS }, {
      extraSources: async (sim, dir) => {
        const cert = await serverCertificate(sim.url);
        const caFile = path.join(dir, 'sim-ca.pem');
        await writeFile(caFile, cert.pem);
        return {
          finance: { projects: ['p-finance'] },
          broken: { wrongPassword: true },
          // Trust without `insecure`: the certificate pinned by its thumbprint, or given as the CA.
          pinned: { insecure: false, tls: { thumbprint: cert.sha1 } },
          pinned256: { insecure: false, tls: { thumbprint: cert.sha256 } },
          withca: { insecure: false, tls: { caFile } },
          mispinned: { insecure: false, tls: { thumbprint: '00'.repeat(19) + '01' } },
          untrusted: { insecure: false },
        };
      },
    });
    await env.startWorker();
    api = await startApi(env, {
      users: [
        { name: 'alice', projects: ['p-app'], role: 'reader' },
        { name: 'fin', projects: ['p-finance'], role: 'reader' },
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('lists the sources the caller may use, each checked live, never with a secret', async () => {
    const res = await api.as('alice').get('/sources');
    expect(res.status).toBe(200);
    const byId = Object.fromEntries(res.data.sources.map((s: { id: string }) => [s.id, s]));
    expect(Object.keys(byId).sort()).toEqual(['broken', 'mispinned', 'pinned', 'pinned256', 'sim', 'untrusted', 'withca']);
    for (const trusted of ['pinned', 'pinned256', 'withca']) expect(`${trusted}: ${byId[trusted].connectivity.reachable}`).toBe(`${trusted}: true`);
    expect(byId.mispinned.connectivity).toMatchObject({ reachable: false, error: expect.stringMatching(/has SHA1 thumbprint [0-9A-F:]+, not the configured 00:00:.*:01; if the certificate was replaced on purpose/) });
    expect(byId.untrusted.connectivity).toMatchObject({ reachable: false, error: expect.stringMatching(/certificate not trusted/) });
    expect(byId.sim).toMatchObject({ id: 'sim', url: env.sim.url, kind: 'vcenter', connectivity: { reachable: true, apiType: 'VirtualCenter', apiVersion: expect.stringMatching(/^\d+\.\d+/) } });
    expect(byId.sim.connectivity.latencyMs).toBeGreaterThanOrEqual(0);
    expect(byId.broken.connectivity.reachable).toBe(false);
    expect(byId.broken.connectivity.error).toMatch(/login|password|incorrect/i);
    expect(JSON.stringify(res.data)).not.toContain(SIM_PASSWORD);
    expect(JSON.stringify(res.data)).not.toContain('not-the-password');
    const fin = await api.as('fin').get('/sources', { params: { check: 'false' } });
    expect(fin.data.sources.map((s: { id: string }) => s.id).sort()).toEqual(['broken', 'finance', 'mispinned', 'pinned', 'pinned256', 'sim', 'untrusted', 'withca']);
    expect(fin.data.sources.every((s: { connectivity?: unknown }) => s.connectivity === undefined)).toBe(true);
  }, 60_000);

  it('migrates from a source trusted by its pinned certificate: the SOAP client and nbdkit both check it', async () => {
    const submit = await api.http.post('/migrations', { sourceId: 'pinned', vm: { name: 'app-1' }, target: { project: 'p-app', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'n1' }] }, guest: { convert: 'skip' } });
    expect(submit.status).toBe(202);
    const status = await waitForMigration(api.http, submit.data.id, { timeoutMs: 120_000 });
    expect(status.status).toBe('COMPLETED');
    expect(status.disks[0].verification).toMatchObject({ match: true });
  }, 120_000);

  it('reads every field of a VM as vSphere reports it', async () => {
    const res = await api.as('alice').get('/sources/sim/vms', { params: { name: 'odd-1' } });
    expect(res.status).toBe(200);
    expect(res.data.total).toBe(1);
    const vm = res.data.vms[0];
    const sim = env.sim.vms.find((v) => v.name === 'odd-1')!;
    expect(vm).toMatchObject({
      moref: sim.moref,
      name: 'odd-1',
      template: false,
      datacenter: 'DC0',
      folder: 'legacy/finance',
      host: { name: 'DC0_C0_H1', moref: expect.stringMatching(/^host-/) },
      powerState: 'poweredOn',
      guest: { id: 'rhel8_64Guest', ipAddresses: ['192.0.2.15', 'fe80::250:56ff:feaa:bb01'] },
      firmware: 'efi',
      secureBoot: true,
      cpus: 4,
      memoryMB: 8192,
      changeTracking: true,
      snapshotCount: 2,
      tools: { runningStatus: 'guestToolsRunning', versionStatus: 'guestToolsSupportedOld' },
      faultToleranceState: 'running',
    });
    expect(vm.disks.map((d: any) => [d.label, d.capacityBytes, d.datastore, d.mode, d.sharing, d.backing, d.rdmMode ?? null, d.controller.type, d.controller.unitNumber])).toEqual([
      ['Hard disk 1', 4 << 20, 'LocalDS_0', 'persistent', 'sharingNone', 'flat', null, 'ParaVirtualSCSIController', 0],
      ['Hard disk 2', 2 << 20, 'LocalDS_1', 'independent_persistent', 'sharingNone', 'flat', null, 'ParaVirtualSCSIController', 1],
      ['Hard disk 3', 2 << 20, 'LocalDS_0', 'persistent', 'sharingMultiWriter', 'flat', null, 'ParaVirtualSCSIController', 2],
      ['Hard disk 4', 2 << 20, 'LocalDS_0', 'independent_persistent', 'sharingNone', 'rdm', 'physicalMode', 'ParaVirtualSCSIController', 3],
    ]);
    expect(vm.disks[0].thinProvisioned).toBe(false);
    expect(vm.nics.map((n: any) => [n.macAddress, n.network, n.adapterType, n.ipAddresses])).toEqual([
      ['00:50:56:aa:bb:01', 'VM Network', 'VirtualVmxnet3', ['192.0.2.15', 'fe80::250:56ff:feaa:bb01']],
      ['00:50:56:aa:bb:02', 'DC0_DVPG0', 'VirtualE1000e', []],
    ]);
    expect(vm.specialDevices.map((d: any) => d.kind).sort()).toEqual(['pciPassthrough', 'tpm', 'usb']);
    // A powered-off VM reports its Tools as not running; one built without snapshots has none.
    const off = (await api.as('alice').get('/sources/sim/vms', { params: { name: 'app-1', limit: 1 } })).data.vms[0];
    expect(off).toMatchObject({ name: 'app-1', powerState: 'poweredOff', snapshotCount: 0, tools: { runningStatus: 'guestToolsNotRunning' }, faultToleranceState: 'notConfigured', specialDevices: [] });
  }, 60_000);

  it('pages through the whole inventory in name order without repeating or skipping a VM', async () => {
    const names: string[] = [];
    const totals = new Set<number>();
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const res = await api.as('alice').get('/sources/sim/vms', { params: { limit: 7, ...(pageToken ? { pageToken } : {}) } });
      expect(res.status).toBe(200);
      expect(res.data.vms.length).toBeLessThanOrEqual(7);
      names.push(...res.data.vms.map((v: { name: string }) => v.name));
      totals.add(res.data.total);
      pageToken = res.data.nextPageToken;
      pages++;
    } while (pageToken && pages < 20);
    // The model's own four VMs are in the inventory too.
    const expected = [...VMS.map((v) => v.name), 'DC0_H0_VM0', 'DC0_H0_VM1', 'DC0_C0_RP0_VM0', 'DC0_C0_RP0_VM1'].sort();
    expect(names).toEqual(expected);
    expect([...totals]).toEqual([expected.length]);
    expect(pages).toBe(Math.ceil(expected.length / 7));
  }, 60_000);

  it('filters by name, folder, power state and host', async () => {
    const names = async (params: Record<string, string | number>) =>
      ((await api.as('alice').get('/sources/sim/vms', { params: { limit: 200, ...params } })).data.vms as Array<{ name: string }>).map((v) => v.name).sort();
    const specNames = (pick: (v: SimVmSpec, i: number) => boolean) => VMS.filter(pick).map((v) => v.name).sort();
    expect(await names({ name: 'APP-1' })).toEqual(specNames((v) => /^app-1\d?$/.test(v.name)));
    expect(await names({ folder: 'prod' })).toEqual(specNames((v) => (v.folder ?? '').startsWith('prod/')));
    expect(await names({ folder: 'prod/db' })).toEqual(specNames((v) => v.folder === 'prod/db'));
    expect(await names({ host: 'DC0_C0_H1', name: 'app' })).toEqual(specNames((v) => v.host === 'DC0_C0_H1' && v.name.startsWith('app')));
    expect(await names({ powerState: 'poweredOff', name: 'app-' })).toEqual(specNames((v) => v.powerState === 'poweredOff' && v.name.startsWith('app')));
  }, 60_000);

  it('serves a recent read from the cache and reads again when asked for a fresh one', async () => {
    const state = async (maxAgeSeconds?: number) =>
      (await api.as('alice').get('/sources/sim/vms', { params: { name: 'app-3', limit: 1, ...(maxAgeSeconds !== undefined ? { maxAgeSeconds } : {}) } })).data.vms[0].powerState;
    expect(await state(0)).toBe('poweredOff');
    const vc = await VimClient.login({ url: env.sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
    try {
      await vc.powerOn(await vc.findVm({ name: 'app-3' }));
    } finally {
      await vc.logout();
    }
    expect(await state()).toBe('poweredOff'); // the read of a moment ago
    expect(await state(0)).toBe('poweredOn');
  }, 60_000);

  it("answers another project's source exactly as one that does not exist, and refuses bad queries with 400", async () => {
    const hidden = await api.as('alice').get('/sources/finance/vms');
    const missing = await api.as('alice').get('/sources/nowhere/vms');
    expect([hidden.status, missing.status]).toEqual([404, 404]);
    expect(hidden.data.detail).toBe("no source 'finance'");
    expect(Object.keys(hidden.data).sort()).toEqual(Object.keys(missing.data).sort());
    const own = await api.as('fin').get('/sources/finance/vms', { params: { name: 'odd-1' } });
    expect(own.status).toBe(200);
    expect(own.data.vms[0].moref).toBe(env.sim.vms.find((v) => v.name === 'odd-1')!.moref);
    for (const bad of [{ limit: 0 }, { limit: 201 }, { powerState: 'off' }, { pageToken: 'bm90IGEgdG9rZW4' }, { surprise: 1 }, { maxAgeSeconds: -1 }]) {
      const res = await api.as('alice').get('/sources/sim/vms', { params: bad });
      expect(`${JSON.stringify(bad)} → ${res.status}`).toBe(`${JSON.stringify(bad)} → 400`);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const broken = await api.as('alice').get('/sources/broken/vms');
    expect(broken.status).toBe(502);
    expect(broken.data.detail).toMatch(/^reading the inventory of source 'broken': .*(login|password|incorrect)/i);
  }, 60_000);
});
