/** Placement under uwsgi; it reads placement.conf from OS_PLACEMENT_CONFIG_DIR. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSet } from './proc';
import { authtoken, dbUrl, writeIni, type LabContext } from './service-config';
import { uwsgi } from './uwsgi';

export function placementConf(ctx: LabContext): string {
  const dir = path.join(ctx.etc, 'placement');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'placement.conf');
  writeIni(file, {
    DEFAULT: { use_stderr: true },
    api: { auth_strategy: 'keystone' },
    placement_database: { connection: dbUrl(ctx, 'placement') },
    keystone_authtoken: authtoken(ctx, 'placement'),
  });
  return file;
}

export function startPlacement(procs: ProcessSet, ctx: LabContext, conf: string): void {
  uwsgi(procs, 'placement-api', '/usr/bin/placement-api', ctx.ports.placement, { OS_PLACEMENT_CONFIG_DIR: path.dirname(conf) }, { threads: 4 });
}
