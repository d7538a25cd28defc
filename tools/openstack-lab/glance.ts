/** Glance: its eventlet API server with the file store in stateDir/glance. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSet } from './proc';
import { authtoken, dbUrl, writeIni, type LabContext } from './service-config';

export function glanceConf(ctx: LabContext): string {
  const dir = path.join(ctx.etc, 'glance');
  mkdirSync(dir, { recursive: true });
  const state = path.join(ctx.stateDir, 'glance');
  for (const d of ['images', 'staging', 'tasks']) mkdirSync(path.join(state, d), { recursive: true });
  const file = path.join(dir, 'glance-api.conf');
  writeIni(file, {
    DEFAULT: {
      bind_host: '127.0.0.1',
      bind_port: ctx.ports.glance,
      workers: 1,
      use_stderr: true,
      graceful_shutdown_timeout: 3,
      enabled_backends: 'fs:file',
      image_cache_dir: path.join(state, 'cache'),
    },
    database: { connection: dbUrl(ctx, 'glance') },
    keystone_authtoken: authtoken(ctx, 'glance'),
    paste_deploy: { flavor: 'keystone', config_file: '/etc/glance/glance-api-paste.ini' },
    glance_store: { default_backend: 'fs' },
    fs: { filesystem_store_datadir: path.join(state, 'images') },
    os_glance_staging_store: { filesystem_store_datadir: path.join(state, 'staging') },
    os_glance_tasks_store: { filesystem_store_datadir: path.join(state, 'tasks') },
    oslo_concurrency: { lock_path: path.join(state, 'lock') },
  });
  return file;
}

export function startGlance(procs: ProcessSet, conf: string): void {
  procs.start('glance-api', 'glance-api', ['--config-file', conf]);
}
