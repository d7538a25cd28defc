import { assessMigrations, type PreflightAnswer, type PreflightRequest } from '../preflight/assess-migrations';
import type { InventoryCache } from '../source/inventory-cache';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';
import { readInventory } from './source-activities';

/** How old an inventory read preflight may judge on: fresh enough for a decision, shared by a burst of requests. */
const PREFLIGHT_INVENTORY_MAX_AGE_MS = 10_000;

export function createPreflightActivities(deps: ActivityDeps, cache: InventoryCache) {
  return {
    /** Pass, Warn or Fail with every reason, for each VM of a request to migrate them; reads only. */
    async assessMigrations(req: PreflightRequest): Promise<PreflightAnswer> {
      return failuresTranslated(async () => {
        const snapshot = await cache.get(req.sourceId, PREFLIGHT_INVENTORY_MAX_AGE_MS, () => readInventory(deps, req.sourceId));
        return assessMigrations(req, {
          inventory: snapshot.vms,
          transport: deps.config.sources[req.sourceId]?.transport.plugin ?? 'curl',
          provider: deps.targets.get(req.target.name),
        });
      });
    },
  };
}
