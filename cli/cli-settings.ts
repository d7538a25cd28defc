import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './cli-errors';

/**
 * Where the CLI finds the API and its token: flags first, then the environment (VMIGRATE_API_URL, VMIGRATE_TOKEN),
 * then what `vmigrate login` saved (a file only its owner can read).
 */
export interface CliSettings {
  url: string;
  token?: string;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

export function settingsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.VMIGRATE_CLI_CONFIG ?? path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'vmigrate', 'cli.json');
  return base;
}

async function saved(env: NodeJS.ProcessEnv): Promise<Partial<CliSettings>> {
  try {
    const v = JSON.parse(await readFile(settingsFile(env), 'utf8')) as Partial<CliSettings>;
    return { url: typeof v.url === 'string' ? v.url : undefined, token: typeof v.token === 'string' ? v.token : undefined };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read ${settingsFile(env)}: ${(err as Error).message}; delete it and log in again`);
  }
}

export async function resolveSettings(flags: { apiUrl?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): Promise<CliSettings> {
  const file = await saved(env);
  // An empty variable counts as unset, as shells leave them.
  const url = flags.apiUrl || env.VMIGRATE_API_URL || file.url || DEFAULT_API_URL;
  try {
    new URL(url);
  } catch {
    throw new CliError(`the API URL ${JSON.stringify(url)} is not a URL; give it as --api-url http://host:8080`, 2);
  }
  return { url, token: flags.token || env.VMIGRATE_TOKEN || file.token || undefined };
}

export async function saveSettings(s: CliSettings, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = settingsFile(env);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}
