import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { KeystoneIdentityConfig } from './identity-config';
import { IdentityUnavailableError, ROLES, type IdentityProvider, type Principal, type Role } from './identity-provider';
import { tokenHash } from './static-identity';

/**
 * The caller's own Keystone token, validated against Keystone v3 (`GET /auth/tokens` with the token as both
 * X-Auth-Token and X-Subject-Token: Keystone's default policy lets a token's subject validate it, rule:token_subject).
 *
 * Answers are cached under the token's SHA-256 (the raw token is never kept, logged or put in a message): a valid
 * token for at most `cacheSeconds` and never past its expiry, a refused one briefly so a flood of bad tokens does not
 * reach Keystone. Calls for the same token while Keystone is being asked share that one request.
 */

export interface KeystoneIdentityOptions {
  /** How long one validation may take before Keystone counts as unavailable. */
  timeoutMs?: number;
  /** How long a refused token is refused without asking Keystone again. */
  negativeCacheSeconds?: number;
  /** Most answers kept; the oldest go first. */
  maxEntries?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_NEGATIVE_SECONDS = 10;
const DEFAULT_MAX_ENTRIES = 10_000;
/** Fernet tokens are ~200 bytes, JWS a few hundred; anything near this is not a Keystone token. */
const MAX_TOKEN_LENGTH = 8 * 1024;
/** Visible printable ASCII, no spaces or control characters: what every Keystone token format is made of. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** The part of Keystone's token validation reply read here (the rest, like the catalog, is ignored). */
const tokenReply = z.object({
  token: z.object({
    expires_at: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be a date'),
    user: z.object({ id: z.string().min(1), name: z.string().min(1) }),
    project: z.object({ id: z.string(), name: z.string().min(1), domain: z.object({ id: z.string().optional(), name: z.string().optional() }).optional() }).optional(),
    roles: z.array(z.object({ name: z.string() })).optional(),
  }),
});

interface CacheEntry {
  /** undefined: Keystone refused the token (or it carries none of reader, member, admin). */
  principal: Principal | undefined;
  /** Served until then (ms since epoch, by the injected clock). */
  until: number;
}

/** `url` without user info, for messages. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/+$/, '');
  } catch {
    return '(invalid URL)';
  }
}

export class KeystoneIdentity implements IdentityProvider {
  private readonly http: AxiosInstance;
  private readonly url: string;
  private readonly shownUrl: string;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly pending = new Map<string, Promise<Principal | undefined>>();
  private readonly negativeMs: number;
  private readonly maxEntries: number;

  constructor(
    private readonly cfg: KeystoneIdentityConfig,
    /** The clock cache lifetimes and expiry are judged by (tests move it). */
    private readonly now: () => number = Date.now,
    opts: KeystoneIdentityOptions = {},
  ) {
    this.url = `${cfg.authUrl.replace(/\/+$/, '')}/auth/tokens`;
    this.shownUrl = safeUrl(cfg.authUrl);
    this.negativeMs = (opts.negativeCacheSeconds ?? DEFAULT_NEGATIVE_SECONDS) * 1000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.http = axios.create({
      timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true, rejectUnauthorized: !cfg.insecure }),
      // Every status is an answer judged below; the token is never sent anywhere Keystone redirects to.
      validateStatus: () => true,
      maxRedirects: 0,
      proxy: false,
      responseType: 'text',
      transformResponse: (d: unknown) => d,
    });
  }

  async authenticate(token: string): Promise<Principal | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || !TOKEN_CHARS.test(token)) return undefined;
    const key = tokenHash(token);
    const cached = this.cache.get(key);
    if (cached) {
      if (cached.until > this.now()) return copy(cached.principal);
      this.cache.delete(key);
    }
    let asking = this.pending.get(key);
    if (!asking) {
      asking = this.validate(token, key).finally(() => this.pending.delete(key));
      this.pending.set(key, asking);
    }
    return copy(await asking);
  }

  private async validate(token: string, key: string): Promise<Principal | undefined> {
    const res = await this.ask(token);
    if (res.status === 401 || res.status === 404) {
      // Unknown, expired, revoked, or its user or project disabled.
      this.remember(key, undefined, this.now() + this.negativeMs);
      return undefined;
    }
    if (res.status === 403) {
      throw new IdentityUnavailableError(
        `Keystone at ${this.shownUrl} refused to validate a token for its own subject (HTTP 403): its policy for ` +
          'identity:validate_token must include rule:token_subject, as Keystone\'s default policy does',
      );
    }
    if (res.status !== 200) {
      throw new IdentityUnavailableError(`Keystone at ${this.shownUrl} could not validate a token: HTTP ${res.status} ${faultMessage(res.data, token)}`.trim());
    }
    let body: z.infer<typeof tokenReply>;
    try {
      body = tokenReply.parse(JSON.parse(String(res.data)));
    } catch {
      throw new IdentityUnavailableError(`Keystone at ${this.shownUrl} answered a token validation with a reply that is not a Keystone v3 token`);
    }
    const t = body.token;
    const expiresAt = Date.parse(t.expires_at);
    const names = new Set((t.roles ?? []).map((r) => r.name));
    let role: Role | undefined;
    for (const r of ROLES) if (names.has(r)) role = r;
    const principal: Principal | undefined = role && {
      user: t.user.name,
      userId: t.user.id,
      // Only a project-scoped token acts in a project; an unscoped, domain- or system-scoped token sees none. Names are
      // unique within a domain only: a project of another domain than the one migrations name projects in sees none.
      projects: t.project && inDomain(t.project.domain, this.cfg.projectDomain) ? [t.project.name] : [],
      role,
      via: 'keystone',
      expiresAt,
    };
    const now = this.now();
    this.remember(key, principal, principal ? Math.min(now + this.cfg.cacheSeconds * 1000, expiresAt) : now + this.negativeMs);
    return principal;
  }

  private async ask(token: string): Promise<AxiosResponse> {
    try {
      return await this.http.get(this.url, {
        // nocatalog: the catalog is not needed here, and it is most of the reply.
        params: { nocatalog: '' },
        headers: { 'X-Auth-Token': token, 'X-Subject-Token': token, Accept: 'application/json' },
      });
    } catch (err) {
      // Only the code and message: the axios error holds the request, token headers and all.
      const e = err as { code?: string; message?: string };
      const tls = /CERT|SELF_SIGNED|TLS|SSL/i.test(e.code ?? '') || /certificate/i.test(e.message ?? '');
      const what = e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT' ? 'timed out' : 'failed';
      const message = e.message ?? '';
      const detail = redact(e.code && !message.includes(e.code) ? `${e.code} ${message}`.trim() : message || (e.code ?? 'error'), token);
      throw new IdentityUnavailableError(
        `cannot reach Keystone at ${this.shownUrl}: validating a token ${what} (${detail})` +
          (tls ? '; its certificate is not trusted (identity.insecure accepts a self-signed one, labs only)' : ''),
      );
    }
  }

  private remember(key: string, principal: Principal | undefined, until: number): void {
    this.cache.delete(key);
    if (until <= this.now()) return;
    this.cache.set(key, { principal, until });
    // A Map iterates in insertion order: the first keys are the oldest answers.
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.maxEntries) break;
      this.cache.delete(oldest);
    }
  }
}

function copy(p: Principal | undefined): Principal | undefined {
  return p && { ...p, projects: p.projects === '*' ? '*' : [...p.projects] };
}

function redact(text: string, token: string): string {
  return text.split(token).join('[token]');
}

/** Keystone's `{"error": {"message"}}`, short and without the token. */
function faultMessage(data: unknown, token: string): string {
  const text = typeof data === 'string' ? data : '';
  let message = text;
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof m === 'string') message = m;
  } catch {
    // Not JSON (a proxy's HTML page): its start is still a clue.
  }
  return redact(message.replace(/\s+/g, ' ').trim(), token).slice(0, 300);
}

/** A project's domain (name or id) is the configured one. */
function inDomain(domain: { id?: string; name?: string } | undefined, wanted: string): boolean {
  return !!domain && (domain.name === wanted || domain.id === wanted);
}
