/**
 * Keystone under uwsgi (its only server in Zed) with Fernet tokens and a private keystone.conf.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSet, Service } from './proc';
import { dbUrl, writeIni, type LabContext } from './service-config';
import { uwsgi } from './uwsgi';

export function keystoneConf(ctx: LabContext): string {
  const dir = path.join(ctx.etc, 'keystone');
  mkdirSync(dir, { recursive: true });
  const keys = path.join(ctx.stateDir, 'keystone');
  const file = path.join(dir, 'keystone.conf');
  writeIni(file, {
    DEFAULT: { debug: false, use_stderr: true },
    database: { connection: dbUrl(ctx, 'keystone') },
    token: { provider: 'fernet', expiration: 43200 },
    fernet_tokens: { key_repository: path.join(keys, 'fernet-keys'), max_active_keys: 3 },
    fernet_receipts: { key_repository: path.join(keys, 'fernet-keys') },
    credential: { key_repository: path.join(keys, 'credential-keys') },
    // bcrypt's cost is paid on every password authentication: every service's token, every test's.
    identity: { password_hash_rounds: 4 },
    // One keystone process: its in-process cache is coherent, and it cuts each request's token validation.
    cache: { enabled: true, backend: 'dogpile.cache.memory' },
  });
  return file;
}

/**
 * Key repositories as `keystone-manage fernet_setup` and `credential_setup` make them (key 0 staged, key 1 primary;
 * a Fernet key is 32 random bytes, urlsafe base64), written directly: the lab needs no rotation.
 */
export function writeKeyRepositories(ctx: LabContext): void {
  for (const repo of ['fernet-keys', 'credential-keys']) {
    const dir = path.join(ctx.stateDir, 'keystone', repo);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const n of ['0', '1']) writeFileSync(path.join(dir, n), randomBytes(32).toString('base64url') + '=', { mode: 0o600 });
  }
}

export function startKeystone(procs: ProcessSet, ctx: LabContext, conf: string): Service {
  writeKeyRepositories(ctx);
  return uwsgi(procs, 'keystone', '/usr/bin/keystone-wsgi-public', ctx.ports.keystone, { OS_KEYSTONE_CONFIG_FILES: conf }, { threads: 4 });
}

/** `keystone-manage bootstrap`: the admin user, project and role (and member, reader), no endpoints yet. */
export function bootstrapArgs(conf: string, adminPassword: string, region: string): string[] {
  return [
    '--config-file', conf, 'bootstrap',
    '--bootstrap-password', adminPassword,
    '--bootstrap-username', 'admin',
    '--bootstrap-project-name', 'admin',
    '--bootstrap-role-name', 'admin',
    '--bootstrap-region-id', region,
  ];
}
