import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../config/vmigrate-config';
import { staticTokenSchema, type IdentityConfig, type StaticTokenConfig } from './identity-config';
import type { IdentityProvider } from './identity-provider';
import { KeystoneIdentity } from './keystone-identity';
import { StaticIdentity } from './static-identity';

/** The identity backend the configuration names; static tokens may also come from a tokens file (see admin-token.ts). */
export function identityFromConfig(cfg: IdentityConfig, tokensFile?: string): IdentityProvider {
  if (cfg.backend === 'keystone') return new KeystoneIdentity(cfg);
  return new StaticIdentity({ backend: 'static', tokens: [...cfg.tokens, ...(tokensFile ? readTokensFile(tokensFile) : [])] });
}

const tokensFileSchema = z.object({ tokens: z.array(staticTokenSchema) }).strict();

export function readTokensFile(file: string): StaticTokenConfig[] {
  if (!existsSync(file)) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read API tokens file ${file}: ${(err as Error).message}`);
  }
  const parsed = tokensFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`API tokens file ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data.tokens;
}
