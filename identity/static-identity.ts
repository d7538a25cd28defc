import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StaticIdentityConfig, StaticTokenConfig } from './identity-config';
import type { IdentityProvider, Principal } from './identity-provider';

/** The hash a static token is stored as: only it is kept in the configuration. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random API token (shown once to whoever creates it). */
export function newApiToken(): string {
  return `vmt_${randomBytes(24).toString('base64url')}`;
}

/** Bearer tokens from the configuration, compared by hash in constant time. */
export class StaticIdentity implements IdentityProvider {
  private readonly entries: Array<{ hash: Buffer; token: StaticTokenConfig }>;

  constructor(
    cfg: StaticIdentityConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = cfg.tokens.map((t) => ({ hash: Buffer.from(t.sha256, 'hex'), token: t }));
  }

  async authenticate(token: string): Promise<Principal | undefined> {
    const hash = Buffer.from(tokenHash(token), 'hex');
    // Every entry is compared, so the time taken does not tell which (or whether one) matched.
    let found: StaticTokenConfig | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.hash, hash)) found = e.token;
    if (!found) return undefined;
    const expiresAt = found.expiresAt ? Date.parse(found.expiresAt) : undefined;
    if (expiresAt !== undefined && expiresAt <= this.now()) return undefined;
    return {
      user: found.user,
      projects: found.projects.includes('*') ? '*' : found.projects,
      role: found.role,
      via: 'static',
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
  }
}
