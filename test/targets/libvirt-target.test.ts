/**
 * The libvirt target against real libvirtds (tools/libvirt-lab: two hosts, each in its own mount, UTS and network
 * namespace, a bridge between them): the target-provider contract, with volumes made through libvirt in a storage
 * pool both hosts share (a FUSE mount typed glusterfs, which libvirt takes for shared storage as it would NFS) and the instance a domain defined and started on the landing host; a cold migration from the
 * vSphere simulator into it through the API, landing byte for byte, started, and then live-migrated to the other
 * host over the shared pool (memory only). A pool the worker cannot reach is refused with what to do.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LibvirtTargetConfig } from '../../targets/target-config';
import { LibvirtTargetProvider } from '../../targets/libvirt/libvirt-target-provider';
import { TargetRequestError } from '../../targets/target-errors';
import { sha256File } from '../../tools/disk-image';
import { unmountAll } from '../../tools/openstack-lab/share';
import { MIGRATION_BRIDGE, startLibvirtPair, type LibvirtPair, type PairHost } from '../../tools/libvirt-lab/libvirt-pair';
import { vmigrateCacheDir } from '../../tools/test-guest/test-guest-paths';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { until } from '../harness/until';
import { describeTargetProviderContract } from './target-provider-contract';

const MiB = 1024 * 1024;
const virsh = (h: PairHost, ...args: string[]) => execFileSync('virsh', ['-q', '-c', h.uri, ...args], { encoding: 'utf8', stdio: 'pipe' }).trim();

const work = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-libvirt-target-'));
/** The storage both hosts mount: a FUSE mount of the glusterfs type, which libvirt takes for shared storage. */
const sharedPool = path.join(work, 'shared-pool');
let pairStarted: Promise<LibvirtPair> | undefined;
/** One pair for the file, with a dir pool "shared" on both hosts at the shared storage's mount. */
function pair(): Promise<LibvirtPair> {
  pairStarted ??= (async () => {
    mkdirSync(path.join(work, 'shared-fs'), { recursive: true });
    mkdirSync(sharedPool, { recursive: true });
    // Mounted before the hosts start: their mount namespaces begin with it.
    execFileSync('bindfs', ['-o', 'subtype=glusterfs,allow_other', path.join(work, 'shared-fs'), sharedPool]);
    const p = await startLibvirtPair({ cacheRoot: vmigrateCacheDir(), dir: path.join(work, 'pair') });
    for (const h of p.hosts) {
      virsh(h, 'pool-define-as', 'shared', 'dir', '--target', sharedPool);
      virsh(h, 'pool-start', 'shared');
    }
    return p;
  })();
  return pairStarted;
}

function targetConfig(p: LibvirtPair, overrides: Partial<LibvirtTargetConfig> = {}): LibvirtTargetConfig {
  return {
    driver: 'libvirt',
    hosts: p.hosts.map((h) => ({ name: h.hostname, uri: h.uri, migrationAddress: h.address })),
    storagePool: 'shared',
    sharedStorage: true,
    networks: { prod: { bridge: MIGRATION_BRIDGE } },
    flavors: [{ name: 'tiny', vcpus: 1, ramMB: 128 }],
    virtType: 'qemu',
    ...overrides,
  };
}

afterAll(async () => {
  await (await pairStarted?.catch(() => undefined))?.stop();
  await unmountAll(work);
  rmSync(work, { recursive: true, force: true });
});

describeTargetProviderContract(
  'libvirt (two libvirtds, a shared dir pool)',
  async () => {
    const p = await pair();
    const [a] = p.hosts;
    return {
      provider: new LibvirtTargetProvider('kvm', targetConfig(p)),
      project: 'proj',
      volumeType: 'default',
      flavor: 'tiny',
      nics: [{ sourceMac: '00:50:56:aa:bb:01', network: 'prod', preserveMac: true }],
      // The domain's NICs as libvirt has them.
      async instanceMacs(id: string) {
        return virsh(a, 'domiflist', id)
          .split('\n')
          .map((l) => l.trim().split(/\s+/).at(-1)!)
          .filter((m) => /^[0-9a-f:]{17}$/.test(m));
      },
    };
  },
  { timeoutMs: 180_000 },
);

describe('the libvirt target', () => {
  let env: MigrationEnv;
  let api: TestApi;
  let p: LibvirtPair;

  beforeAll(async () => {
    p = await pair();
    env = await createMigrationEnv(
      'libvirt-target',
      {
        vms: [
          {
            name: 'web01',
            guestId: 'debian11_64Guest',
            firmware: 'bios',
            numCPUs: 1,
            memoryMB: 128,
            powerState: 'poweredOff',
            disks: [{ capacityMiB: 64 }, { capacityMiB: 16 }],
            nics: [{ network: 'VM Network', macAddress: '00:50:56:33:44:01' }],
          },
        ],
      },
      { diskImages: { web01: 64 * MiB }, targets: { kvm: targetConfig(p) }, defaultTarget: 'kvm' },
    );
    await env.startWorker();
    api = await startApi(env);
  }, 10 * 60_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('a cold migration lands in the pool byte for byte and runs as a domain with its MAC on the mapped bridge; then it moves live over the shared pool', async () => {
    const [a, b] = p.hosts;
    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'web01' },
      target: { name: 'kvm', project: 'apps', flavor: 'tiny', volumeType: 'default', start: true, networks: [{ sourceMac: '00:50:56:33:44:01', targetNetwork: 'prod', preserveMac: true }] },
      // The disks hold synthetic bytes, no OS: conversion and its boot check are the guest tests' business.
      guest: { convert: 'skip' },
    });
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;
    const status = await waitForMigration(api.http, id, { timeoutMs: 300_000 });
    expect({ status: status.status, stage: status.stage, error: status.error }).toEqual({ status: 'COMPLETED', stage: 'Completed', error: undefined });
    expect(status.instance).toMatchObject({ target: 'kvm', project: 'apps', name: 'web01', status: 'ACTIVE' });

    // The volumes are the pool's, made by libvirt; each holds its disk's bytes.
    const volumes = virsh(a, 'vol-list', 'shared')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[0]?.startsWith('apps--'));
    expect(volumes.map((c) => c[0]).sort()).toEqual([`apps--${id}-disk0`, `apps--${id}-disk1`]);
    const xml = virsh(a, 'dumpxml', 'apps-web01');
    const files = [...xml.matchAll(/<source file='([^']+)'/g)].map((m) => m[1]!);
    expect(files).toHaveLength(2);
    expect(await sha256File(files[0]!)).toBe(await sha256File(env.images.web01));
    const flat1 = path.join(env.sim.datastoreDir, env.sim.vms[0].disks[1].flatPath);
    expect(await sha256File(files[1]!)).toBe(await sha256File(flat1));
    for (const f of files) expect(volumes.some((c) => c.at(-1) === f)).toBe(true);
    // Defined as the migration decided: the MAC kept, on the bridge the target maps 'prod' to, virtio, BIOS.
    expect(xml).toContain("<mac address='00:50:56:33:44:01'/>");
    expect(xml).toContain(`<source bridge='${MIGRATION_BRIDGE}'/>`);
    expect(xml).toMatch(/<target dev='vda' bus='virtio'\/>/);
    expect(virsh(a, 'domstate', 'apps-web01')).toBe('running');
    expect(() => virsh(b, 'domstate', 'apps-web01')).toThrow(/failed to get domain/);

    // The landed instance moves to the other host; its disks are on storage both see, so only memory goes.
    const live = await api.http.post('/live-migrations', { target: 'kvm', server: 'apps-web01', destination: b.hostname });
    expect(live.status).toBe(202);
    const view = await until('the live migration ended', async () => {
      const v = (await api.http.get(`/live-migrations/${live.data.id}`)).data;
      return v.status === 'RUNNING' ? undefined : v;
    }, 240_000);
    expect({ ...view, error: view.error }).toMatchObject({ error: undefined, stage: 'Completed', status: 'COMPLETED', source: a.hostname, destination: b.hostname, mode: 'live' });
    expect(view.events.map((e: { name: string }) => e.name)).toEqual(['live.requested', 'checks.passed', 'migration.started', 'migration.completed', 'verify.passed', 'live.completed']);
    expect(view.events[1].data).toEqual({ source: a.hostname, candidates: [b.hostname], mode: 'live' });
    expect(virsh(b, 'domstate', 'apps-web01')).toBe('running');
    expect(() => virsh(a, 'domstate', 'apps-web01')).toThrow(/failed to get domain/);
    // The provider follows it there.
    const provider = new LibvirtTargetProvider('kvm', targetConfig(p));
    expect(await provider.getInstance({ project: 'apps', name: 'web01' })).toMatchObject({ id: status.instance.id, status: 'ACTIVE' });
    virsh(b, 'destroy', 'apps-web01');
  }, 600_000);

  it('refuses a pool the worker cannot reach, and a network the target does not map, saying what to do', async () => {
    const [a] = p.hosts;
    // The hosts' own "default" pools are in their private mounts: this worker does not see their files.
    const apart = new LibvirtTargetProvider('kvm', targetConfig(p, { storagePool: 'default', sharedStorage: false }));
    const err = await apart.createVolume({ project: 'apps', name: 'unreachable', sizeBytes: MiB, volumeType: 'default', owner: { migrationId: 'm-unreachable', disk: '2000' } }).catch((e) => e);
    expect(err).toBeInstanceOf(TargetRequestError);
    expect(err.message).toBe(
      `volume file /var/lib/libvirt/images/apps--unreachable of pool default on host ${a.hostname} is not visible to this worker: run vmigrate's worker on ${a.hostname}, or mount the pool's storage on the worker at /var/lib/libvirt/images (sharedStorage)`,
    );
    const provider = new LibvirtTargetProvider('kvm', targetConfig(p));
    await expect(provider.checkPlacement({ project: 'apps', volumeType: 'default', nics: [{ sourceMac: '00:50:56:33:44:09', network: 'dmz', preserveMac: true }] })).rejects.toThrow(
      "network 'dmz' is not mapped in target kvm's networks (prod); add it as {\"bridge\": …} or {\"network\": …}",
    );
    await expect(new LibvirtTargetProvider('kvm', targetConfig(p, { storagePool: 'nope' })).checkPlacement({ project: 'apps', volumeType: 'default', nics: [] })).rejects.toThrow(
      new RegExp(`^host ${a.hostname} has no storage pool nope \\(.*\\); define it there, or set the target's storagePool$`),
    );
  }, 120_000);
});
