import { writeFileSync } from 'node:fs';
import type { IdentityConfig } from './identity-config';
import { readTokensFile } from './identity-from-config';
import { newApiToken, tokenHash } from './static-identity';

/**
 * First start without any API token: one admin token is created, returned once (to be printed), and only its SHA-256
 * is kept, in the tokens file (mode 0600). Later starts find the file and create nothing.
 */
export function ensureAdminToken(cfg: IdentityConfig, tokensFile: string): string | undefined {
  if (cfg.backend !== 'static' || cfg.tokens.length > 0 || readTokensFile(tokensFile).length > 0) return undefined;
  const token = newApiToken();
  const entry = { sha256: tokenHash(token), user: 'admin', projects: ['*'], role: 'admin' as const };
  // wx: never overwrite a file another process created in the meantime.
  writeFileSync(tokensFile, `${JSON.stringify({ tokens: [entry] }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}
