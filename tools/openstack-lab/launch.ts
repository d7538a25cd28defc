/**
 * Starts a real OpenStack (Debian's Zed packages) on this machine, every service bound to 127.0.0.1 on free ports,
 * with all state, configs and logs under one directory: for vmigrate's tests of its OpenStack target, and for users
 * (`npm run lab:openstack`). See the README (section "A real OpenStack to try it on").
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../temporal-dev-server';
import { endpointUpdates } from './catalog';
import { CINDER_HOST, VOLUME_BACKEND, cinderConf, startCinder } from './cinder';
import { cacheRoot, ensureDbTemplate } from './db-template';
import { glanceConf, startGlance } from './glance';
import { keystoneConf, startKeystone } from './keystone';
import { linkLibvirtHosts, saveQemuCapabilities, startLibvirtHost, type LibvirtHost } from './libvirt-host';
import { startMariaDb, type MariaDb } from './mariadb';
import { neutronConf, startNeutron } from './neutron';
import { computeInstancesDir, FAKE_COMPUTES, fakeComputeConf, LIBVIRT_INSTANCES_PATH, libvirtComputeConf, novaConf, startCompute, startLibvirtCompute, startNovaControl } from './nova';
import { placementConf, startPlacement } from './placement';
import { capture, labProcesses, ProcessSet, sleep } from './proc';
import { waitFor, waitHttp } from './wait';
import { startRabbitMq } from './rabbitmq';
import { createFlavors, createNetworks, createVolumeType, createZone } from './resources';
import { call, issueToken } from './rest';
import type { LabContext } from './service-config';
import { createShare, mountsUnder, unmountAll, type Share } from './share';

export interface OpenStackLabOptions {
  /** Where state, configs and logs go; a fresh temporary directory (removed at stop) when omitted. */
  stateDir?: string;
  /** Start the libvirt/qemu compute (default true). */
  libvirt?: boolean;
  log?: (s: string) => void;
}

export interface OpenStackLab {
  /** http://127.0.0.1:PORT/v3 */
  authUrl: string;
  region: string;
  admin: { username: string; password: string; projectName: string; userDomainName: 'Default'; projectDomainName: 'Default' };
  /** OS_* variables for the openstack CLI and for vmigrate's config, admin scope. */
  env(): Record<string, string>;
  /** The availability zone whose compute is the real libvirt/qemu one (boots real guests), and the fake-driver zone. */
  zones: { libvirt?: string; fake: string };
  /** The NFS-backed volume type. */
  volumeType: string;
  stateDir: string;
  /** The directory on this host that is the Cinder NFS share's export: where volume-<id> files appear. */
  shareExportDir: string;
  /** Hosts of the computes, by driver (what os-services and os-hypervisors list); `libvirt` is the first libvirt one. */
  computeHosts: { fake: string[]; libvirt?: string };
  /** The libvirt URI of the first libvirt compute's libvirtd (virsh -c URI), when it runs. */
  libvirtUri?: string;
  /**
   * The libvirt computes, each its own libvirtd in its own namespaces, joined by a migration network: their libvirt
   * URIs, their addresses on it, and where their instances directories are (console.log of each instance).
   */
  libvirtHosts: Array<{ host: string; uri: string; address: string; instancesDir: string }>;
  /** Ids of what the lab pre-creates. */
  networkId: string;
  publicNetworkId: string;
  /** Stops every process, unmounts, detaches the loop device; removes stateDir if the lab created it. Idempotent. */
  stop(): Promise<void>;
}

export const LIBVIRT_ZONE = 'libvirt';
export const FAKE_ZONE = 'fake';
export const LIBVIRT_HOST = 'lab-libvirt';
/** Both libvirt computes, in the libvirt zone: live migration between them is real QEMU migration. */
export const LIBVIRT_HOSTS = [LIBVIRT_HOST, 'lab-libvirt-2'];
const MIGRATION_SUBNET = '10.232.0';
const SHARE_GIB = 64;

export async function startOpenStackLab(opts: OpenStackLabOptions = {}): Promise<OpenStackLab> {
  const log = opts.log ?? (() => undefined);
  const withLibvirt = opts.libvirt ?? true;
  const ownDir = !opts.stateDir;
  const stateDir = path.resolve(opts.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), 'vmigrate-openstack-lab-'))));
  mkdirSync(stateDir, { recursive: true });
  if (mountsUnder(stateDir).length) throw new Error(`${stateDir} has mounts of an earlier lab: stop it (or unmount) first`);
  const logDir = path.join(stateDir, 'logs');
  const etc = path.join(stateDir, 'etc');
  mkdirSync(logDir, { recursive: true });
  mkdirSync(etc, { recursive: true });
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const procs = new ProcessSet(logDir);
  let share: Share | undefined;
  const libvirtHosts: LibvirtHost[] = [];
  let stopped: Promise<void> | undefined;

  // If this process ends without stop() (an uncaught error, process.exit), end what the lab started and unmount
  // its tree, synchronously: nothing else runs in an exit handler. The process groups are ProcessSet's.
  const onExit = () => {
    for (const pid of [labProcesses(stateDir + '/'), ...libvirtHosts.map((h) => labProcesses(stateDir + '/', h.mntNs))].flat()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      execFileSync('umount', ['--recursive', '--lazy', stateDir], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    if (share) {
      try {
        execFileSync('losetup', ['-d', share.loopDevice], { stdio: 'ignore' });
      } catch {
        /* detached */
      }
    }
    if (ownDir && !mountsUnder(stateDir).length) rmSync(stateDir, { recursive: true, force: true });
  };
  process.on('exit', onExit);

  const stop = () =>
    (stopped ??= (async () => {
      process.off('exit', onExit);
      await procs.stopAll();
      // What the services started outside their process groups: qemu (daemonized by libvirtd), privsep daemons,
      // bindfs.
      for (let i = 0; i < 3; i++) {
        const left = [labProcesses(stateDir + '/'), ...libvirtHosts.map((h) => labProcesses(stateDir + '/', h.mntNs))].flat();
        if (!left.length) break;
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await sleep(200);
      }
      await unmountAll(stateDir);
      if (share) await capture('losetup', ['-d', share.loopDevice]).catch(() => undefined);
      const left = mountsUnder(stateDir);
      if (left.length) throw new Error(`the lab could not unmount ${left.join(', ')}`);
      if (ownDir) await rm(stateDir, { recursive: true, force: true });
    })());

  try {
    const ports = await distinctPorts(12);
    const [dbPort, amqp, dist, epmd, keystone, glance, placement, nova, neutron, cinder, migration] = ports;
    const region = 'RegionOne';
    const keystoneUrl = `http://127.0.0.1:${keystone}`;
    // The state tree is a shared mount, so mounts made in it later (Cinder's and Nova's of the share) reach the
    // libvirt host's mount namespace.
    await capture('mount', ['--bind', stateDir, stateDir]);
    await capture('mount', ['--make-rshared', stateDir]);

    let db!: MariaDb;
    let ctx!: LabContext;
    const dbReady = (async () => {
      const template = await ensureDbTemplate(log);
      const mysqlDir = path.join(stateDir, 'mysql');
      mkdirSync(mysqlDir, { recursive: true });
      await cp(template.datadir, path.join(mysqlDir, 'data'), { recursive: true });
      db = await startMariaDb(procs, mysqlDir, dbPort);
      ctx = {
        stateDir,
        etc,
        logDir,
        region,
        authUrl: `${keystoneUrl}/v3`,
        keystoneUrl,
        db: { port: dbPort, user: template.dbUser, password: template.dbPassword },
        rabbit: { port: amqp, user: 'guest', password: 'guest' },
        ports: { keystone, glance, placement, nova, neutron, cinder },
        servicePasswords: template.servicePasswords,
      };
      await db.sql(endpointUpdates(ctx), 'keystone');
      log(`mariadb up (${elapsed()})`);
      return template.adminPassword;
    })();
    const rabbitReady = startRabbitMq(procs, path.join(stateDir, 'rabbitmq'), { amqp, dist, epmd }).then(() => log(`rabbitmq up (${elapsed()})`));
    const shareReady = createShare(path.join(stateDir, 'share'), SHARE_GIB, path.join(logDir, 'share.log')).then((s) => (share = s));
    const libvirtReady = withLibvirt
      ? Promise.all(
          LIBVIRT_HOSTS.map((name) => {
            const instances = computeInstancesDir({ stateDir }, name);
            mkdirSync(instances, { recursive: true });
            return startLibvirtHost(procs, path.join(stateDir, 'libvirt', name), name, migration, cacheRoot(), { binds: [[instances, LIBVIRT_INSTANCES_PATH]] });
          }),
        ).then((hosts) => {
          libvirtHosts.push(...hosts);
          log(`libvirtds up (${elapsed()})`);
        })
      : Promise.resolve();

    // Awaited below, one after another: until then a failure must not count as unhandled.
    for (const p of [dbReady, rabbitReady, shareReady, libvirtReady]) p.catch(() => undefined);
    const adminPassword = await dbReady;
    const admin = { username: 'admin', password: adminPassword, projectName: 'admin', userDomainName: 'Default' as const, projectDomainName: 'Default' as const };
    const keystoneSvc = startKeystone(procs, ctx, keystoneConf(ctx));
    await Promise.all([rabbitReady, shareReady]);
    const confs = {
      glance: glanceConf(ctx),
      placement: placementConf(ctx),
      nova: novaConf(ctx),
      neutron: neutronConf(ctx),
      cinder: cinderConf(ctx, share!.nfsExport),
    };
    startPlacement(procs, ctx, confs.placement);
    startGlance(procs, confs.glance);
    startNovaControl(procs, confs.nova);
    startNeutron(procs, confs.neutron);
    startCinder(procs, confs.cinder);
    const svc = (name: string) => procs.services.find((s) => s.name === name)!;
    await waitHttp(keystoneSvc, `${keystoneUrl}/v3`);
    log(`keystone up (${elapsed()})`);
    // Computes report their resources to placement at start: start them once it answers.
    await waitHttp(svc('placement-api'), `http://127.0.0.1:${placement}/`);
    for (const host of FAKE_COMPUTES) startCompute(procs, host, confs.nova, fakeComputeConf(ctx, host));
    await libvirtReady;
    const migrationNetwork = libvirtHosts.length === 2 ? linkLibvirtHosts(libvirtHosts[0]!, libvirtHosts[1]!, { bridge: 'br-migration', subnet: MIGRATION_SUBNET }) : [];
    // Nova names a live migration's destination by its address on the migration network (live_migration_inbound_addr);
    // the libvirt URI of that address is its libvirtd's socket, reached through a directory named after the address.
    const byAddress = path.join(stateDir, 'libvirt', 'by-address');
    mkdirSync(byAddress, { recursive: true });
    for (const [i, h] of libvirtHosts.entries()) {
      symlinkSync(path.join(h.dir, 'run'), path.join(byAddress, migrationNetwork[i]!));
      startLibvirtCompute(procs, h, confs.nova, libvirtComputeConf(ctx, h, { inboundAddress: migrationNetwork[i]!, peerUri: `qemu+unix:///system?socket=${byAddress}/%s/libvirt-sock` }));
    }

    await Promise.all([
      waitHttp(svc('glance-api'), `http://127.0.0.1:${glance}/versions`),
      waitHttp(svc('nova-api'), `http://127.0.0.1:${nova}/v2.1/`),
      waitHttp(svc('neutron-server'), `http://127.0.0.1:${neutron}/`),
      waitHttp(svc('cinder-api'), `http://127.0.0.1:${cinder}/`),
    ]);
    log(`APIs answer (${elapsed()})`);

    const token = await issueToken(ctx.authUrl, admin);
    const projectId = token.body.token.project!.id;
    const novaUrl = `http://127.0.0.1:${nova}/v2.1`;
    const neutronUrl = `http://127.0.0.1:${neutron}`;
    const cinderUrl = `http://127.0.0.1:${cinder}/v3/${projectId}`;
    const [, nets] = await Promise.all([
      createFlavors(token.id, novaUrl),
      createNetworks(token.id, neutronUrl),
      createVolumeType(token.id, cinderUrl, VOLUME_BACKEND, VOLUME_BACKEND),
    ]);

    const computeHosts = [...FAKE_COMPUTES, ...libvirtHosts.map((h) => h.hostname)];
    const computeServices = computeHosts.map((h) => svc(`nova-compute-${h}`));
    await waitFor(
      'the computes to be up, in placement and mapped to cell1',
      [...computeServices, svc('nova-conductor'), svc('nova-scheduler')],
      async () => {
        const s = await call<{ services: Array<{ host: string; state: string; status: string }> }>(
          token.id, 'GET', `${novaUrl}/os-services?binary=nova-compute`);
        const up = s.services.filter((x) => x.state === 'up').map((x) => x.host);
        if (!computeHosts.every((h) => up.includes(h))) return false;
        const mapped = (await db.sql('SELECT host FROM host_mappings', 'nova_api')).split('\n');
        if (!computeHosts.every((h) => mapped.includes(h))) return false;
        const rps = await call<{ resource_providers: Array<{ name: string; uuid: string }> }>(
          token.id, 'GET', `http://127.0.0.1:${placement}/resource_providers`);
        return computeHosts.every((h) => rps.resource_providers.some((r) => r.name === h));
      },
      240_000,
    );
    await createZone(token.id, novaUrl, FAKE_ZONE, [...FAKE_COMPUTES]);
    if (libvirtHosts.length) {
      await createZone(token.id, novaUrl, LIBVIRT_ZONE, libvirtHosts.map((h) => h.hostname));
      saveQemuCapabilities(libvirtHosts[0]!.dir, cacheRoot());
    }
    log(`computes up (${elapsed()})`);

    await waitFor(
      'cinder-volume to be up and its NFS pool reported',
      [svc('cinder-volume'), svc('cinder-scheduler')],
      async () => {
        const s = await call<{ services: Array<{ host: string; state: string }> }>(token.id, 'GET', `${cinderUrl}/os-services?binary=cinder-volume`);
        if (!s.services.some((x) => x.host === `${CINDER_HOST}@${VOLUME_BACKEND}` && x.state === 'up')) return false;
        const pools = await call<{ pools: Array<{ name: string }> }>(token.id, 'GET', `${cinderUrl}/scheduler-stats/get_pools`);
        return pools.pools.some((p) => p.name.startsWith(`${CINDER_HOST}@${VOLUME_BACKEND}#`));
      },
      180_000,
    );
    log(`OpenStack lab ready in ${elapsed()} (${stateDir})`);

    const authUrl = ctx.authUrl;
    return {
      authUrl,
      region,
      admin,
      env: () => ({
        OS_AUTH_URL: authUrl,
        OS_USERNAME: admin.username,
        OS_PASSWORD: admin.password,
        OS_PROJECT_NAME: admin.projectName,
        OS_USER_DOMAIN_NAME: admin.userDomainName,
        OS_PROJECT_DOMAIN_NAME: admin.projectDomainName,
        OS_REGION_NAME: region,
        OS_IDENTITY_API_VERSION: '3',
        OS_INTERFACE: 'public',
      }),
      zones: { libvirt: libvirtHosts.length ? LIBVIRT_ZONE : undefined, fake: FAKE_ZONE },
      volumeType: VOLUME_BACKEND,
      stateDir,
      shareExportDir: share!.exportDir,
      computeHosts: { fake: [...FAKE_COMPUTES], libvirt: libvirtHosts.length ? LIBVIRT_HOST : undefined },
      libvirtUri: libvirtHosts[0]?.uri,
      libvirtHosts: libvirtHosts.map((h, i) => ({ host: h.hostname, uri: h.uri, address: migrationNetwork[i]!, instancesDir: computeInstancesDir({ stateDir }, h.hostname) })),
      networkId: nets.networkId,
      publicNetworkId: nets.publicNetworkId,
      stop,
    };
  } catch (err) {
    await stop().catch((e) => log(`cleanup after a failed start: ${(e as Error).message}`));
    throw err;
  }
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
