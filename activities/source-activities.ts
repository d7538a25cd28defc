import { resolveSource } from '../config/source-credentials';
import { InventoryCache } from '../source/inventory-cache';
import { pageOfInventory, type InventoryCursor, type InventoryFilter, type InventoryPage } from '../source/inventory-page';
import { VimClient } from '../vsphere/vim-client';
import type { InventoryVm } from '../vsphere/vm-inventory';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';
import { connectOptionsOf } from '../source/vsphere/vm-session';

/** What a source's live connectivity check found; a source that cannot be reached is an answer, not a failure. */
export interface SourceCheck {
  sourceId: string;
  reachable: boolean;
  checkedAt: string;
  /** VirtualCenter (a vCenter) or HostAgent (a standalone ESXi host). */
  apiType?: string;
  apiVersion?: string;
  product?: string;
  /** Why it could not be reached or logged in to. */
  error?: string;
  /** Milliseconds the login took. */
  latencyMs?: number;
}

export interface SourceVmsRequest {
  sourceId: string;
  filter: InventoryFilter;
  after?: InventoryCursor;
  limit: number;
  /** Serve an inventory read at most this long ago (0: read now). */
  maxAgeSeconds: number;
}

export interface SourceVmsPage extends InventoryPage {
  /** When the inventory this page comes from was read from the source. */
  readAt: string;
}

/** How long a connectivity check waits for the source. */
const CHECK_TIMEOUT_MS = 10_000;

async function withSourceClient<T>(deps: ActivityDeps, sourceId: string, body: (client: VimClient) => Promise<T>, timeoutMs?: number): Promise<T> {
  const source = resolveSource(deps.config, sourceId);
  const client = await VimClient.login(connectOptionsOf(source, timeoutMs));
  try {
    return await body(client);
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Every VM of the source, read now. */
export function readInventory(deps: ActivityDeps, sourceId: string): Promise<InventoryVm[]> {
  return withSourceClient(deps, sourceId, (client) => client.readInventory());
}

/** Reads of a source that are not part of a migration: connectivity and the inventory (cached briefly per worker). */
export function createSourceActivities(deps: ActivityDeps, cache: InventoryCache) {
  const inventoryOf = (sourceId: string, maxAgeSeconds: number) => cache.get(sourceId, maxAgeSeconds * 1000, () => readInventory(deps, sourceId));

  return {
    async checkSource(input: { sourceId: string }): Promise<SourceCheck> {
      const started = Date.now();
      const checkedAt = new Date(started).toISOString();
      // A source id that is not configured is the caller's mistake and fails; everything past it is the answer.
      resolveSource(deps.config, input.sourceId);
      try {
        const about = await withSourceClient(deps, input.sourceId, async (client) => client.serviceContent, CHECK_TIMEOUT_MS);
        return {
          sourceId: input.sourceId,
          reachable: true,
          checkedAt,
          apiType: about.apiType,
          apiVersion: about.apiVersion,
          product: about.fullName,
          latencyMs: Date.now() - started,
        };
      } catch (err) {
        return { sourceId: input.sourceId, reachable: false, checkedAt, error: err instanceof Error ? err.message : String(err) };
      }
    },

    async listSourceVms(input: SourceVmsRequest): Promise<SourceVmsPage> {
      return failuresTranslated(async () => {
        const snapshot = await inventoryOf(input.sourceId, input.maxAgeSeconds);
        return { ...pageOfInventory(snapshot.vms, input), readAt: new Date(snapshot.readAt).toISOString() };
      });
    },
  };
}
