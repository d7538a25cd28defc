import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { VmigrateConfig } from '../config/vmigrate-config';
import type { IdentityProvider } from '../identity/identity-provider';
import { identityFromConfig } from '../identity/identity-from-config';
import { targetCatalog } from '../targets/target-catalog';
import type { ApiDeps } from './app';

/** What the API is built from, read off the configuration (no credentials: sources by id, targets by name). */
export function apiDepsFromConfig(
  config: VmigrateConfig,
  opts: { client: Client; taskQueue: string; namespace?: string; logger: Logger; tokensFile?: string; identity?: IdentityProvider },
): ApiDeps {
  return {
    client: opts.client,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    sources: Object.fromEntries(Object.entries(config.sources).map(([id, s]) => [id, { projects: s.projects, url: urlWithoutUserInfo(s.url), ...(s.lab ? { lab: true } : {}) }])),
    targets: targetCatalog(config),
    identity: opts.identity ?? identityFromConfig(config.identity, opts.tokensFile),
    admission: config.admission,
    agents: config.agents,
    logger: opts.logger,
  };
}

/** A URL as shown to API callers: never user info, even if someone put it there. */
function urlWithoutUserInfo(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
