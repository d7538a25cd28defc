import { readFileSync } from 'node:fs';
import { ConfigError } from './vmigrate-config';

/** A secret named in the configuration by where it lives; read only by workers, at the moment of use. */
export interface SecretRef {
  file?: string;
  env?: string;
}

export function readSecret(ref: SecretRef, what: string): string {
  if (ref.file) {
    try {
      return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${what}: cannot read ${ref.file}: ${(err as Error).message}`);
    }
  }
  if (ref.env) {
    const value = process.env[ref.env];
    if (value === undefined) throw new ConfigError(`${what}: environment variable ${ref.env} is not set`);
    return value;
  }
  throw new ConfigError(`${what}: no file or env given`);
}
