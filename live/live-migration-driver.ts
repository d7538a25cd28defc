import type { ConvergencePolicy } from './convergence';
import type { LiveCheck, LiveProgress, WatchHooks } from './nova-live-migration-run';
import type { LiveMigrationRecord, ServerPlacement } from '../targets/openstack/nova-live-migrations';

/**
 * The steps of one live migration, as each kind of target carries them out (Nova's API for an OpenStack cloud,
 * libvirt peer to peer between a libvirt target's hosts). The `liveMigration` workflow calls these through its
 * activities and does not know which one it drives.
 */
export interface LiveMigrationDriver {
  /** The checks before it; throws a typed error with every reason when it cannot go. */
  check(input: { serverId: string; destination?: string; blockMigration: 'auto' | boolean }): Promise<LiveCheck>;
  /** Starts it, unless this operation started it already (a retried start starts nothing). */
  start(input: { operationId: string; serverId: string; source: string; destination?: string; blockMigration: 'auto' | boolean; after: number }): Promise<{ requestId?: string; alreadyStarted: boolean }>;
  /** Until it ends: progress heartbeated, the convergence policy applied; the record when it completed. */
  watch(input: { serverId: string; requestId?: string; after: number; convergence?: ConvergencePolicy; resumed?: LiveProgress }, hooks: WatchHooks): Promise<LiveMigrationRecord>;
  /** Running on the destination, and only there. */
  verify(input: { serverId: string; source: string; record: LiveMigrationRecord }): Promise<ServerPlacement>;
  /** A cancel: the running migration aborted, the instance left running on its source. */
  abort(input: { serverId: string; after: number }): Promise<{ aborted: boolean }>;
}
