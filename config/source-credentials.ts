import { readSecret } from './secret-ref';
import { type SourceConfig, type VmigrateConfig } from './vmigrate-config';

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
  const password = readSecret({ file: src.passwordFile, env: src.passwordEnv }, `source ${sourceId}`);
  return { ...src, id: sourceId, password };
}
