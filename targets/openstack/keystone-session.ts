import { readSecret } from '../../config/secret-ref';
import type { OpenStackTargetConfig } from '../target-config';
import { TargetAuthError, TargetNotFoundError } from '../target-errors';
import { faultError, parseFault } from './openstack-errors';

/**
 * Keystone v3 for one configured target: a token scoped to each migration's project (the provider acts in that
 * project only), the service catalog that came with it, and renewal before the token expires. The secret is read
 * from where the configuration names it each time a token is issued, and never logged or returned.
 */

export interface CatalogEndpoint {
  interface: string;
  region?: string;
  region_id?: string;
  url: string;
}

interface CatalogEntry {
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}

export interface ProjectToken {
  token: string;
  projectId: string;
  projectName: string;
  expiresAt: number;
  catalog: CatalogEntry[];
}

/** Renew this long before expiry: an activity's calls must never race the token's end. */
const RENEW_BEFORE_MS = 5 * 60 * 1000;
const PROJECT_ID = /^[0-9a-f]{32}$/;

export type ServiceType = 'compute' | 'volumev3' | 'network' | 'image' | 'placement';
/** Names a catalog may use for the same service (Cinder registers block-storage too). */
const SERVICE_ALIASES: Record<ServiceType, string[]> = {
  compute: ['compute'],
  volumev3: ['volumev3', 'block-storage', 'volume'],
  network: ['network'],
  image: ['image'],
  placement: ['placement'],
};

export class KeystoneSession {
  private readonly tokens = new Map<string, ProjectToken>();
  private readonly pending = new Map<string, Promise<ProjectToken>>();

  constructor(
    private readonly cfg: OpenStackTargetConfig,
    /** The clock renewal is judged by (tests move it). */
    private readonly now: () => number = Date.now,
  ) {}

  /** A valid token for `project` (a name in the configured project domain, or a 32-hex id). */
  async token(project: string): Promise<ProjectToken> {
    const cached = this.tokens.get(project);
    if (cached && cached.expiresAt - this.now() > RENEW_BEFORE_MS) return cached;
    let issuing = this.pending.get(project);
    if (!issuing) {
      issuing = this.issue(project).finally(() => this.pending.delete(project));
      this.pending.set(project, issuing);
    }
    const fresh = await issuing;
    this.tokens.set(project, fresh);
    return fresh;
  }

  /** Forget a token the cloud refused (revoked before its expiry), so the next call issues a new one. */
  invalidate(project: string, token: string): void {
    if (this.tokens.get(project)?.token === token) this.tokens.delete(project);
  }

  /** The endpoint of a service in the token's catalog, for the configured interface and region. */
  endpoint(token: ProjectToken, type: ServiceType): string {
    const iface = this.cfg.interface;
    const region = this.cfg.region;
    for (const name of SERVICE_ALIASES[type]) {
      const entry = token.catalog.find((e) => e.type === name);
      const ep = entry?.endpoints.find((e) => e.interface === iface && (!region || e.region_id === region || e.region === region));
      // Keystone fills in the project for scoped tokens; a catalog may still carry the template (older deployments).
      if (ep) return ep.url.replace(/[%$]\((?:project_id|tenant_id)\)s/g, token.projectId).replace(/\/+$/, '');
    }
    throw new TargetNotFoundError(
      `the target's service catalog has no ${type} endpoint for interface ${iface}${region ? ` in region ${region}` : ''}`,
    );
  }

  private async issue(project: string): Promise<ProjectToken> {
    const { auth } = this.cfg;
    let body: unknown;
    if (auth.method === 'password') {
      const scope = PROJECT_ID.test(project) ? { project: { id: project } } : { project: { name: project, domain: { name: auth.projectDomain } } };
      body = {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: auth.username, domain: { name: auth.userDomain }, password: readSecret(auth.password, 'target password') } },
          },
          scope,
        },
      };
    } else {
      // An application credential is bound to one project: it can serve only migrations into that project.
      body = { auth: { identity: { methods: ['application_credential'], application_credential: { id: auth.id, secret: readSecret(auth.secret, 'target application credential secret') } } } };
    }
    let res: Response;
    try {
      res = await fetch(`${this.cfg.authUrl.replace(/\/+$/, '')}/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      throw new Error(`cannot reach Keystone at ${this.cfg.authUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (res.status === 401) {
      throw new TargetAuthError(
        `Keystone at ${this.cfg.authUrl} refused the target's credentials for project '${project}': ${parseFault(401, text).message}; ` +
          'check the user, password or application credential, and that the user has a role in that project',
      );
    }
    if (!res.ok) throw faultError(parseFault(res.status, text), `issuing a token for project '${project}'`);
    const subject = res.headers.get('x-subject-token');
    const tok = (JSON.parse(text) as { token: { expires_at: string; project?: { id: string; name: string }; catalog?: CatalogEntry[] } }).token;
    if (!subject || !tok.project) throw new TargetAuthError(`Keystone issued no project-scoped token for project '${project}'`);
    if (auth.method === 'application-credential' && tok.project.id !== project && tok.project.name !== project) {
      throw new TargetAuthError(
        `the target's application credential is for project '${tok.project.name}' (${tok.project.id}), not '${project}'; ` +
          'use a credential of that project or a password user with a role in it',
      );
    }
    return { token: subject, projectId: tok.project.id, projectName: tok.project.name, expiresAt: Date.parse(tok.expires_at), catalog: tok.catalog ?? [] };
  }
}
