import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { identityConfigSchema } from '../identity/identity-config';
import { targetConfigSchema, targetNameSchema, type TargetConfig } from '../targets/target-config';

/**
 * Deployment configuration, read by workers and the API. Source credentials are referenced here (a file or an
 * environment variable) and resolved only by workers, so they never travel through workflow inputs or history.
 */

const nbdkitFilter = z.object({ name: z.string().min(1), params: z.record(z.string(), z.string()).optional() });

const sourceSchema = z.object({
  /** vSphere SDK endpoint, e.g. https://vcenter.example/sdk */
  url: z.string().url(),
  username: z.string().min(1),
  /** Exactly one of these names where the password comes from. */
  passwordFile: z.string().optional(),
  passwordEnv: z.string().optional(),
  /** Accept a self-signed certificate (labs and the simulator). */
  insecure: z.boolean().default(false),
  /**
   * Trust for the source's TLS certificate instead of the system's CAs: a CA file (PEM), or the certificate's
   * thumbprint as vCenter/ESXi show it (SHA-1 or SHA-256 hex, colons optional), which pins that certificate.
   */
  tls: z
    .object({ caFile: z.string().min(1).optional(), thumbprint: z.string().regex(/^([0-9A-Fa-f]{2}:?){19}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'must be a SHA-1 or SHA-256 thumbprint in hex').optional() })
    .strict()
    .refine((t) => !(t.caFile && t.thumbprint), 'give caFile or thumbprint, not both')
    .optional(),
  /** The bundled vSphere simulator that `npm start` offers when nothing is configured (shown as a lab in GET /sources). */
  lab: z.boolean().optional(),
  /** Projects whose users may migrate from this source (default: every project). */
  projects: z.array(z.string().min(1)).optional(),
  /** How disk bytes are read: nbdkit's curl plugin on the datastore URL, or vddk where VMware's VDDK is installed. */
  transport: z
    .object({
      plugin: z.enum(['curl', 'vddk']).default('curl'),
      /** nbdkit filters in front of the plugin (rate limiting, fault injection in tests). */
      filters: z.array(nbdkitFilter).default([]),
      /** NBD connections per disk. */
      connections: z.number().int().min(1).max(16).default(4),
      /** vddk only: libdir and the server's certificate thumbprint. */
      vddkLibdir: z.string().optional(),
      thumbprint: z.string().optional(),
    })
    .default({ plugin: 'curl', filters: [], connections: 4 }),
});

const projectQuota = z
  .object({
    concurrentMigrations: z.number().int().min(1).optional(),
    volumeGiB: z.number().min(1).optional(),
  })
  .strict();

const admissionLimitsSchema = z
  .object({
    copiesPerSourceHost: z.number().int().min(1).optional(),
    copiesPerDatastore: z.number().int().min(1).optional(),
    projects: z.record(z.string().min(1), projectQuota).optional(),
    defaultProjectQuota: projectQuota.optional(),
  })
  .strict();

const secretRefSchema = z
  .object({ file: z.string().min(1).optional(), env: z.string().min(1).optional() })
  .strict()
  .refine((r) => !!r.file !== !!r.env, 'give file or env');

/**
 * Machines booted from the agent's ISO: they enroll at the API's agent endpoint (HTTPS, its own port) and connect to
 * the gateway in one worker (VMIGRATE_HOST_ID = gateway.hostId). Both present one certificate, which the ISO pins;
 * the session key signs what lets an enrolled agent into the gateway (API and that worker need it).
 */
const agentsSchema = z
  .object({
    enrollment: z.object({ port: z.number().int().min(0).max(65535), host: z.string().default('0.0.0.0'), url: z.string().url() }).strict(),
    gateway: z.object({ port: z.number().int().min(0).max(65535), host: z.string().default('0.0.0.0'), address: z.string().regex(/^[^\s:]+:\d+$/, 'host:port'), hostId: z.string().min(1) }).strict(),
    tls: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).strict(),
    sessionKey: secretRefSchema,
    /**
     * How long an agent's session token lasts (default a day). The agent enrolls again before it ends, as the same
     * run, and its open connections go on; a short one bounds how long a revoked key's agents keep connecting.
     */
    sessionLifetimeSeconds: z.number().int().min(10).max(7 * 86400).default(86400),
    /** Where the agent's ISO parts and built ISOs are cached (default: the user's cache directory). */
    isoCacheDir: z.string().optional(),
  })
  .strict();

const configSchema = z
  .object({
    sources: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), sourceSchema),
    /** Where migrations land, by name; a migration names one (`target.name`) or gets `defaultTarget`. */
    targets: z.record(targetNameSchema, targetConfigSchema).optional(),
    defaultTarget: targetNameSchema.optional(),
    /** Older single-target form, read as the target named "local". */
    target: z.object({ driver: z.literal('local').default('local'), dataDir: z.string().default('data') }).strict().optional(),
    /** Scratch space for workers: digest logs, nbdkit sockets, cookie files, volume mounts. */
    workDir: z.string().default('data/work'),
    /** Who may call the API (default: static tokens, none configured until `npm start` creates an admin token). */
    identity: identityConfigSchema.default({ backend: 'static', tokens: [] }),
    /** Caps and quotas the admission workflow enforces (workflows/admission-ledger.ts); none by default. */
    admission: admissionLimitsSchema.default({}),
    /** Agent-based migration (boot ISO); absent: not offered. */
    agents: agentsSchema.optional(),
  })
  .transform(({ target, targets, defaultTarget, ...rest }) => {
    const all: Record<string, TargetConfig> = { ...(targets ?? {}) };
    if (target || !targets) all.local ??= { driver: 'local', dataDir: target?.dataDir ?? 'data', sharedStorage: false };
    return { ...rest, targets: all, defaultTarget: defaultTarget ?? (all.local ? 'local' : Object.keys(all)[0]) };
  });

export type SourceConfig = z.infer<typeof sourceSchema>;
export type VmigrateConfig = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parse a config object; relative paths are resolved against `baseDir`. */
export function parseConfig(raw: unknown, baseDir = process.cwd()): VmigrateConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid vmigrate configuration: ${why}`);
  }
  const cfg = parsed.data;
  for (const [id, src] of Object.entries(cfg.sources)) {
    if (!!src.passwordFile === !!src.passwordEnv) {
      throw new ConfigError(`source ${id}: set exactly one of passwordFile or passwordEnv`);
    }
    if (src.passwordFile) src.passwordFile = path.resolve(baseDir, src.passwordFile);
  }
  if (!cfg.targets[cfg.defaultTarget]) {
    throw new ConfigError(`defaultTarget '${cfg.defaultTarget}' is not a configured target; configured: ${Object.keys(cfg.targets).join(', ')}`);
  }
  for (const t of Object.values(cfg.targets)) {
    if (t.driver === 'local') t.dataDir = path.resolve(baseDir, t.dataDir);
    else if (t.driver === 'openstack') {
      for (const ref of [t.auth.method === 'password' ? t.auth.password : t.auth.secret]) if (ref.file) ref.file = path.resolve(baseDir, ref.file);
      if (t.volumeAccess.mode === 'cinder-attachment' && t.volumeAccess.mountBase) t.volumeAccess.mountBase = path.resolve(baseDir, t.volumeAccess.mountBase);
    }
  }
  cfg.workDir = path.resolve(baseDir, cfg.workDir);
  if (cfg.agents) {
    cfg.agents.tls.certFile = path.resolve(baseDir, cfg.agents.tls.certFile);
    cfg.agents.tls.keyFile = path.resolve(baseDir, cfg.agents.tls.keyFile);
    if (cfg.agents.sessionKey.file) cfg.agents.sessionKey.file = path.resolve(baseDir, cfg.agents.sessionKey.file);
    if (cfg.agents.isoCacheDir) cfg.agents.isoCacheDir = path.resolve(baseDir, cfg.agents.isoCacheDir);
  }
  return cfg;
}

/** Load the file named by VMIGRATE_CONFIG (default ./vmigrate.config.json). */
export function loadConfig(file = process.env.VMIGRATE_CONFIG ?? 'vmigrate.config.json'): VmigrateConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read vmigrate configuration ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`vmigrate configuration ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, path.dirname(path.resolve(file)));
}
