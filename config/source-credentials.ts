import { readFileSync } from 'node:fs';
import { ConfigError, type SourceConfig, type VmigrateConfig } from './vmigrate-config';

/** A source's endpoint and secret, resolved on the worker at the moment of use and never persisted. */
export interface ResolvedSource extends SourceConfig {
  id: string;
  password: string;
}

export class UnknownSourceError extends Error {
  override name = 'UnknownSourceError';
}

export function resolveSource(config: VmigrateConfig, sourceId: string): ResolvedSource {
  const src = config.sources[sourceId];
  if (!src) {
    const known = Object.keys(config.sources).join(', ') || '(none configured)';
    throw new UnknownSourceError(`unknown source '${sourceId}'; configured sources: ${known}`);
  }
  let password: string | undefined;
  if (src.passwordFile) {
    try {
      password = readFileSync(src.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`source ${sourceId}: cannot read passwordFile: ${(err as Error).message}`);
    }
  } else if (src.passwordEnv) {
    password = process.env[src.passwordEnv];
    if (password === undefined) throw new ConfigError(`source ${sourceId}: environment variable ${src.passwordEnv} is not set`);
  }
  return { ...src, id: sourceId, password: password ?? '' };
}
