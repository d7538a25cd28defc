/**
 * Nova: API (eventlet server), conductor, scheduler, two computes with the fake driver (distinct `host`, zone
 * `nova`) and, where the lab has libvirt, one compute with the libvirt driver (qemu/TCG) against the lab's own
 * libvirtd (libvirt-host.ts). One cell (cell1) besides cell0.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSet } from './proc';
import { authtoken, commonDefaults, dbUrl, serviceAuth, writeIni, type LabContext } from './service-config';
import type { LibvirtHost } from './libvirt-host';

export const FAKE_COMPUTES = ['lab-fake-1', 'lab-fake-2'];

export function novaConf(ctx: LabContext): string {
  const dir = path.join(ctx.etc, 'nova');
  mkdirSync(dir, { recursive: true });
  copyFileSync('/etc/nova/api-paste.ini', path.join(dir, 'api-paste.ini'));
  const state = path.join(ctx.stateDir, 'nova');
  mkdirSync(state, { recursive: true });
  const file = path.join(dir, 'nova.conf');
  writeIni(file, {
    DEFAULT: {
      ...commonDefaults(ctx),
      state_path: state,
      enabled_apis: 'osapi_compute',
      osapi_compute_listen: '127.0.0.1',
      osapi_compute_listen_port: ctx.ports.nova,
      osapi_compute_workers: 1,
    },
    api: { auth_strategy: 'keystone' },
    wsgi: { api_paste_config: path.join(dir, 'api-paste.ini') },
    api_database: { connection: dbUrl(ctx, 'nova_api') },
    database: { connection: dbUrl(ctx, 'nova') },
    keystone_authtoken: authtoken(ctx, 'nova'),
    placement: serviceAuth(ctx, 'nova'),
    neutron: { ...serviceAuth(ctx, 'nova'), service_metadata_proxy: false },
    cinder: { ...serviceAuth(ctx, 'nova'), os_region_name: ctx.region, catalog_info: 'volumev3:cinderv3:publicURL' },
    glance: { region_name: ctx.region },
    // Cinder accepts Nova's attachment updates for a user's volume only with Nova's service token beside the user's.
    service_user: { ...serviceAuth(ctx, 'nova'), send_service_user_token: true },
    scheduler: { discover_hosts_in_cells_interval: 2, workers: 1 },
    conductor: { workers: 1 },
    vnc: { enabled: false },
    spice: { enabled: false },
    oslo_concurrency: { lock_path: path.join(state, 'lock') },
    oslo_messaging_notifications: { driver: 'noop' },
  });
  return file;
}

function computeState(ctx: LabContext, host: string): string {
  const d = path.join(ctx.stateDir, 'nova', host);
  mkdirSync(computeInstancesDir(ctx, host), { recursive: true });
  return d;
}

export function fakeComputeConf(ctx: LabContext, host: string): string {
  const state = computeState(ctx, host);
  const file = path.join(ctx.etc, 'nova', `${host}.conf`);
  writeIni(file, {
    DEFAULT: {
      host,
      compute_driver: 'fake.FakeDriver',
      state_path: state,
      // The fake driver reports 8 vCPUs and 8000 MB: room for a few more test servers.
      initial_cpu_allocation_ratio: 16.0,
      initial_ram_allocation_ratio: 8.0,
      reserved_host_memory_mb: 0,
    },
    oslo_concurrency: { lock_path: path.join(state, 'lock') },
  });
  return file;
}

/**
 * Where every libvirt compute keeps its instances, as in a real cloud, where each compute has the same
 * instances_path: a live migration's domain XML carries the source's paths (the console log's among them) to the
 * destination, which must find them in its own instances directory. Each lab host sees its own directory there
 * (`computeInstancesDir`), bound into its mount namespace, where its nova-compute runs too.
 */
export const LIBVIRT_INSTANCES_PATH = '/var/lib/nova/instances';

/** A compute's instances directory as the rest of the machine sees it. */
export const computeInstancesDir = (ctx: Pick<LabContext, 'stateDir'>, host: string) => path.join(ctx.stateDir, 'nova', host, 'instances');

export function libvirtComputeConf(ctx: LabContext, lv: LibvirtHost, migration: { inboundAddress: string; peerUri: string }): string {
  const state = computeState(ctx, lv.hostname);
  const file = path.join(ctx.etc, 'nova', `${lv.hostname}.conf`);
  const helper = (extra: string[] = []) =>
    ['privsep-helper', ...extra, '--config-file', path.join(ctx.etc, 'nova', 'nova.conf'), '--config-file', file].join(' ');
  writeIni(file, {
    DEFAULT: {
      host: lv.hostname,
      compute_driver: 'libvirt.LibvirtDriver',
      state_path: state,
      instances_path: LIBVIRT_INSTANCES_PATH,
      reserved_host_memory_mb: 256,
      // A guest that ignores ACPI while it boots (under TCG it is slow to get that far) is powered off after 10 s,
      // not Nova's default 60: a stop during the lab's tests should not wait a minute.
      shutdown_timeout: 10,
    },
    libvirt: {
      virt_type: 'qemu',
      cpu_mode: 'none',
      connection_uri: lv.uri,
      images_type: 'raw',
      inject_partition: -2,
      nfs_mount_point_base: path.join(state, 'mnt'),
      // Live migration: peers reach this host at its address on the migration network, and its libvirtd through
      // the URI of that address (live_migration_uri's %s).
      live_migration_inbound_addr: migration.inboundAddress,
      live_migration_uri: migration.peerUri,
    },
    // Nova Zed activates a live-migrated server's port bindings twice at once: from the libvirt "migration
    // completed" event and from its post-migration step. Neutron Zed does not serialize the two; when the first takes
    // long (a loaded machine: about a second here) the second finds the binding gone and fails with a 500 instead of
    // its 409, and Nova gives up on a migration QEMU had completed, destroying the guest on the destination. Nova's
    // own workaround option turns the event path off; the post-migration step still activates the bindings, and the
    // periodic power-state sync stays on.
    workarounds: { handle_virt_lifecycle_events: false },
    // os-vif creates the port's bridge where libvirtd creates the tap: in the libvirt host's network namespace,
    // which has no interface but lo (see libvirt-host.ts).
    vif_plug_linux_bridge_privileged: { helper_command: `nsenter --net=${lv.netns} ${helper()}` },
    oslo_concurrency: { lock_path: path.join(state, 'lock') },
  });
  return file;
}

export function startNovaControl(procs: ProcessSet, conf: string): void {
  // The scheduler maps new computes to cell1 in a periodic task; periodic tasks run at most every
  // periodic_interval (60 s) after a random delay of up to 60 s: for the scheduler alone, run them every 2 s.
  const scheduler = path.join(path.dirname(conf), 'nova-scheduler.conf');
  writeIni(scheduler, { DEFAULT: { periodic_interval: 2, periodic_fuzzy_delay: 0 } });
  procs.start('nova-api', 'nova-api', ['--config-file', conf]);
  procs.start('nova-conductor', 'nova-conductor', ['--config-file', conf]);
  procs.start('nova-scheduler', 'nova-scheduler', ['--config-file', conf, '--config-file', scheduler]);
}

export function startCompute(procs: ProcessSet, host: string, conf: string, hostConf: string): void {
  procs.start(`nova-compute-${host}`, 'nova-compute', ['--config-file', conf, '--config-file', hostConf]);
}

/** A libvirt compute runs in its libvirt host's mount namespace: its instances path and its volume mounts are the host's. */
export function startLibvirtCompute(procs: ProcessSet, lv: LibvirtHost, conf: string, hostConf: string): void {
  procs.start(`nova-compute-${lv.hostname}`, 'nsenter', [`--mount=${lv.mountNs}`, '--', 'nova-compute', '--config-file', conf, '--config-file', hostConf]);
}

/**
 * Cell mappings whose URLs are templates filled from each service's own [database] connection and transport_url,
 * so a cached database works with any run's ports.
 */
export const CELL_MAPPING_COMMANDS: string[][] = [
  ['cell_v2', 'map_cell0', '--database_connection', '{scheme}://{username}:{password}@{hostname}:{port}/nova_cell0?{query}'],
  [
    'cell_v2', 'create_cell', '--name', 'cell1',
    '--database_connection', '{scheme}://{username}:{password}@{hostname}:{port}/nova?{query}',
    '--transport-url', '{scheme}://{username}:{password}@{hostname}:{port}/{path}',
  ],
];
