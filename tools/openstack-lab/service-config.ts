/**
 * oslo.config files for the lab's services, and the sections they share: the database URL, the message queue, the
 * keystonemiddleware and keystoneauth credentials each service uses to reach Keystone and the others.
 */
import { writeFileSync } from 'node:fs';

export type Ini = Record<string, Record<string, string | number | boolean | undefined>>;

export function renderIni(ini: Ini): string {
  let out = '';
  for (const [section, values] of Object.entries(ini)) {
    out += `[${section}]\n`;
    for (const [k, v] of Object.entries(values)) if (v !== undefined) out += `${k} = ${v}\n`;
    out += '\n';
  }
  return out;
}

export function writeIni(file: string, ini: Ini): void {
  writeFileSync(file, renderIni(ini));
}

/** What every service config is generated from. */
export interface LabContext {
  stateDir: string;
  /** stateDir/etc */
  etc: string;
  logDir: string;
  region: string;
  authUrl: string;
  /** Keystone base URL without /v3 (what keystonemiddleware's www_authenticate_uri wants). */
  keystoneUrl: string;
  db: { port: number; user: string; password: string };
  rabbit: { port: number; user: string; password: string };
  ports: Record<'keystone' | 'glance' | 'placement' | 'nova' | 'neutron' | 'cinder', number>;
  /** Password of each service user (nova, glance, placement, neutron, cinder), all in the `service` project. */
  servicePasswords: Record<string, string>;
}

export function dbUrl(ctx: LabContext, database: string): string {
  return `mysql+pymysql://${ctx.db.user}:${ctx.db.password}@127.0.0.1:${ctx.db.port}/${database}?charset=utf8`;
}

export function transportUrl(ctx: LabContext): string {
  return `rabbit://${ctx.rabbit.user}:${ctx.rabbit.password}@127.0.0.1:${ctx.rabbit.port}/`;
}

/** keystoneauth password credentials of service user `user` (a [keystone_authtoken], [placement], [neutron]… section). */
export function serviceAuth(ctx: LabContext, user: string): Record<string, string> {
  return {
    auth_type: 'password',
    auth_url: ctx.keystoneUrl,
    username: user,
    password: ctx.servicePasswords[user],
    project_name: 'service',
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: ctx.region,
  };
}

export function authtoken(ctx: LabContext, user: string): Record<string, string> {
  return {
    www_authenticate_uri: ctx.keystoneUrl,
    ...serviceAuth(ctx, user),
    // Tokens are cached in-process (there is no memcached); keystonemiddleware re-validates after this.
    token_cache_time: '300',
    service_token_roles_required: 'true',
  };
}

/** [DEFAULT] keys every oslo.log/oslo.service program takes the same way here. */
export function commonDefaults(ctx: LabContext): Record<string, string | number | boolean> {
  return {
    debug: false,
    use_stderr: true,
    transport_url: transportUrl(ctx),
    my_ip: '127.0.0.1',
    // The lab's state is disposable: stop in seconds rather than wait out in-flight work for a minute.
    graceful_shutdown_timeout: 3,
  };
}
