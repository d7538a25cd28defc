/**
 * A MariaDB datadir with every service's schema synced, Keystone's admin bootstrapped and Nova's cells mapped,
 * Keystone's service users, roles and catalog made, once, and copied into each lab's state directory: the schema
 * syncs and the Keystone content are most of a cold start. Of what depends on a run's ports, the cell mappings are
 * URL templates and the endpoints' URLs are rewritten at each start (catalog.ts). Its key covers
 * the installed versions of the packages that own the schemas and the sources that shape it; a changed package
 * makes a new template.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../temporal-dev-server';
import { cinderConf } from './cinder';
import { glanceConf } from './glance';
import { bootstrapCatalog, SERVICE_USERS } from './catalog';
import { bootstrapArgs, keystoneConf, startKeystone, writeKeyRepositories } from './keystone';
import { waitHttp } from './wait';
import { createDatabases, installDatadir, startMariaDb } from './mariadb';
import { neutronConf } from './neutron';
import { CELL_MAPPING_COMMANDS, novaConf } from './nova';
import { placementConf } from './placement';
import { ProcessSet, run } from './proc';
import type { LabContext } from './service-config';

const SCHEMA_PACKAGES = [
  'mariadb-server',
  'python3-keystone',
  'python3-glance',
  'python3-placement',
  'python3-nova',
  'python3-neutron',
  'python3-cinder',
];
const SHAPING_SOURCES = ['db-template.ts', 'mariadb.ts', 'keystone.ts', 'catalog.ts', 'nova.ts'];

export interface DbTemplate {
  /** A datadir of a cleanly shut down server: copy, never use in place. */
  datadir: string;
  adminPassword: string;
  dbUser: string;
  dbPassword: string;
  /** Passwords of the service users (nova, glance, …), by name. */
  servicePasswords: Record<string, string>;
}

export function cacheRoot(): string {
  if (process.env.VMIGRATE_OPENSTACK_LAB_CACHE) return process.env.VMIGRATE_OPENSTACK_LAB_CACHE;
  if (process.getuid?.() === 0) return '/var/cache/vmigrate/openstack-lab';
  return path.join(os.homedir(), '.cache', 'vmigrate', 'openstack-lab');
}

export function templateKey(): string {
  const h = createHash('sha256');
  h.update(execFileSync('dpkg-query', ['-W', '-f', '${Package}=${Version}\\n', ...SCHEMA_PACKAGES], { encoding: 'utf8' }));
  for (const f of SHAPING_SOURCES) h.update(readFileSync(path.join(__dirname, f)));
  return h.digest('hex').slice(0, 16);
}

export async function ensureDbTemplate(log: (s: string) => void): Promise<DbTemplate> {
  const root = cacheRoot();
  const key = templateKey();
  const dir = path.join(root, `db-${key}`);
  const meta = path.join(dir, 'meta.json');
  if (existsSync(meta)) return { datadir: path.join(dir, 'mysql', 'data'), ...JSON.parse(readFileSync(meta, 'utf8')) };

  mkdirSync(root, { recursive: true });
  const build = path.join(root, `.build-${key}-${process.pid}-${Date.now()}`);
  log(`building the lab's database template (${dir}): schema syncs, once per package versions`);
  const t0 = Date.now();
  const secrets = {
    adminPassword: randomBytes(12).toString('hex'),
    dbUser: 'openstack',
    dbPassword: randomBytes(12).toString('hex'),
    servicePasswords: Object.fromEntries(SERVICE_USERS.map((u) => [u, randomBytes(12).toString('hex')])),
  };
  const logDir = path.join(build, 'logs');
  mkdirSync(logDir, { recursive: true });
  const procs = new ProcessSet(logDir);
  try {
    await installDatadir(path.join(build, 'mysql'), path.join(logDir, 'mariadb-install.log'));
    const port = await freePort();
    const db = await startMariaDb(procs, path.join(build, 'mysql'), port);
    await createDatabases(db, secrets.dbUser, secrets.dbPassword);
    const ctx = templateContext(build, port, await freePort(), secrets);
    const l = (n: string) => path.join(logDir, `${n}.log`);
    const k = keystoneConf(ctx);
    // bootstrap checks that the repositories exist; tokens made with these keys never leave the build.
    writeKeyRepositories(ctx);
    const g = glanceConf(ctx);
    const p = placementConf(ctx);
    const n = novaConf(ctx);
    const q = neutronConf(ctx);
    const c = cinderConf(ctx, '127.0.0.1:/nonexistent');
    await Promise.all([
      (async () => {
        await run('keystone-manage', ['--config-file', k, 'db_sync'], l('keystone-manage'));
        await run('keystone-manage', bootstrapArgs(k, secrets.adminPassword, ctx.region), l('keystone-manage'));
      })(),
      run('glance-manage', ['--config-file', g, 'db_sync'], l('glance-manage')),
      run('placement-manage', ['--config-file', p, 'db', 'sync'], l('placement-manage')),
      (async () => {
        await run('nova-manage', ['--config-file', n, 'api_db', 'sync'], l('nova-manage'));
        for (const cmd of CELL_MAPPING_COMMANDS) await run('nova-manage', ['--config-file', n, ...cmd], l('nova-manage'));
        await run('nova-manage', ['--config-file', n, 'db', 'sync'], l('nova-manage'));
      })(),
      run('neutron-db-manage', [...q.flatMap((f) => ['--config-file', f]), 'upgrade', 'heads'], l('neutron-db-manage')),
      run('cinder-manage', ['--config-file', c, 'db', 'sync'], l('cinder-manage')),
    ]);
    const keystone = startKeystone(procs, ctx, k);
    await waitHttp(keystone, `${ctx.keystoneUrl}/v3`);
    await bootstrapCatalog(ctx, { username: 'admin', password: secrets.adminPassword });
    await procs.stop(keystone);
    await db.shutdown();
    await procs.stopAll();
    writeFileSync(path.join(build, 'meta.json'), JSON.stringify(secrets), { mode: 0o600 });
    try {
      renameSync(build, dir);
    } catch (err) {
      // Another lab built the same template meanwhile: use that one.
      if (!existsSync(meta)) throw err;
      rmSync(build, { recursive: true, force: true });
    }
    log(`database template ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    await procs.stopAll();
    rmSync(build, { recursive: true, force: true });
    throw err;
  }
  pruneOldTemplates(root, `db-${key}`);
  return ensureDbTemplate(log);
}

function templateContext(dir: string, dbPort: number, keystonePort: number, s: Omit<DbTemplate, 'datadir'>): LabContext {
  const etc = path.join(dir, 'etc');
  mkdirSync(etc, { recursive: true });
  return {
    stateDir: dir,
    etc,
    logDir: path.join(dir, 'logs'),
    region: 'RegionOne',
    authUrl: `http://127.0.0.1:${keystonePort}/v3`,
    keystoneUrl: `http://127.0.0.1:${keystonePort}`,
    db: { port: dbPort, user: s.dbUser, password: s.dbPassword },
    rabbit: { port: 1, user: 'guest', password: 'guest' },
    ports: { keystone: keystonePort, glance: 1, placement: 1, nova: 1, neutron: 1, cinder: 1 },
    servicePasswords: s.servicePasswords,
  };
}

/** Templates of older package versions are never used again. */
function pruneOldTemplates(root: string, keep: string): void {
  for (const e of readdirSync(root)) if (e.startsWith('db-') && e !== keep) rmSync(path.join(root, e), { recursive: true, force: true });
}
