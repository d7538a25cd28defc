/**
 * Cinder: API, scheduler and one volume service whose backend is the real NFS driver
 * (cinder.volume.drivers.nfs.NfsDriver, sparse raw files volume-<id>) over the lab's share (share.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSet } from './proc';
import { authtoken, commonDefaults, dbUrl, serviceAuth, writeIni, type LabContext } from './service-config';

export const CINDER_HOST = 'lab-cinder';
export const VOLUME_BACKEND = 'nfs';

export function cinderConf(ctx: LabContext, nfsExport: string): string {
  const dir = path.join(ctx.etc, 'cinder');
  mkdirSync(dir, { recursive: true });
  const state = path.join(ctx.stateDir, 'cinder');
  mkdirSync(path.join(state, 'mnt'), { recursive: true });
  const shares = path.join(dir, 'nfs_shares');
  writeFileSync(shares, `${nfsExport}\n`);
  const file = path.join(dir, 'cinder.conf');
  writeIni(file, {
    DEFAULT: {
      ...commonDefaults(ctx),
      host: CINDER_HOST,
      auth_strategy: 'keystone',
      state_path: state,
      api_paste_config: '/etc/cinder/api-paste.ini',
      rootwrap_config: '/etc/cinder/rootwrap.conf',
      osapi_volume_listen: '127.0.0.1',
      osapi_volume_listen_port: ctx.ports.cinder,
      osapi_volume_workers: 1,
      enabled_backends: VOLUME_BACKEND,
      default_volume_type: VOLUME_BACKEND,
      storage_availability_zone: 'nova',
      glance_catalog_info: 'image:glance:publicURL',
    },
    database: { connection: dbUrl(ctx, 'cinder') },
    keystone_authtoken: authtoken(ctx, 'cinder'),
    // Cinder → Nova: external events (volume extended) and assisted snapshots.
    nova: { ...serviceAuth(ctx, 'cinder'), interface: 'public' },
    oslo_concurrency: { lock_path: path.join(state, 'lock') },
    [VOLUME_BACKEND]: {
      volume_driver: 'cinder.volume.drivers.nfs.NfsDriver',
      volume_backend_name: VOLUME_BACKEND,
      nfs_shares_config: shares,
      nfs_mount_point_base: path.join(state, 'mnt'),
      nfs_sparsed_volumes: true,
      nfs_qcow2_volumes: false,
      nfs_snapshot_support: true,
      nas_secure_file_operations: false,
      nas_secure_file_permissions: false,
    },
  });
  return file;
}

export function startCinder(procs: ProcessSet, conf: string): void {
  procs.start('cinder-api', 'cinder-api', ['--config-file', conf]);
  procs.start('cinder-scheduler', 'cinder-scheduler', ['--config-file', conf]);
  procs.start('cinder-volume', 'cinder-volume', ['--config-file', conf]);
}
