import { resolveSource, type ResolvedSource } from '../../config/source-credentials';
import type { VmigrateConfig } from '../../config/vmigrate-config';
import { readFileSync } from 'node:fs';
import { VimClient, type VimConnectOptions } from '../../vsphere/vim-client';
import type { MoRef } from '../../vsphere/vim-client';
import type { VmSelector } from '../../shared/migration-input';

export interface VmSession {
  source: ResolvedSource;
  client: VimClient;
  vm: MoRef;
}

/** How to reach and log in to a resolved source: its URL, credentials and TLS trust (a CA file is read here). */
export function connectOptionsOf(source: ResolvedSource, timeoutMs?: number): VimConnectOptions {
  return {
    url: source.url,
    username: source.username,
    password: source.password,
    insecure: source.insecure,
    ...(source.tls?.caFile ? { caPem: readFileSync(source.tls.caFile, 'utf8') } : {}),
    ...(source.tls?.thumbprint ? { thumbprint: source.tls.thumbprint } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
  };
}

/** Log in to the source named by id (credentials resolved here, on the worker), find the VM, run `body`, log out. */
export async function withVmSession<T>(
  config: VmigrateConfig,
  sourceId: string,
  vm: VmSelector,
  body: (session: VmSession) => Promise<T>,
): Promise<T> {
  const source = resolveSource(config, sourceId);
  const client = await VimClient.login(connectOptionsOf(source));
  try {
    const moref = await client.findVm(vm);
    return await body({ source, client, vm: moref });
  } finally {
    await client.logout().catch(() => undefined);
  }
}
