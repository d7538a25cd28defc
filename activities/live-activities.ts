import { Context } from '@temporalio/activity';
import type { ConvergencePolicy } from '../live/convergence';
import { HostOperationsNotConfiguredError, novaHostOperations, type NovaHostOperations } from '../live/nova-host-operations';
import { disableHost, enableHost, serversOn } from '../live/nova-host-drain';
import { abortLive, checkLive, startLive, verifyLive, watchLive, type LiveProgress } from '../live/nova-live-migration-run';
import type { LiveMigrationRecord } from '../targets/openstack/nova-live-migrations';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';

export type { LiveCheck, LiveProgress } from '../live/nova-live-migration-run';

/** Live migration between a target cloud's hosts: thin over live/nova-live-migration-run.ts. */
export function createLiveActivities(deps: ActivityDeps) {
  const sessions = new Map<string, NovaHostOperations>();
  const opsOf = (target: string): NovaHostOperations => {
    const existing = sessions.get(target);
    if (existing) return existing;
    const cfg = deps.config.targets[target];
    if (!cfg || cfg.driver !== 'openstack') throw new HostOperationsNotConfiguredError(`target ${target} is not an OpenStack target: live migration through Nova needs one`);
    const ops = novaHostOperations(target, cfg);
    sessions.set(target, ops);
    return ops;
  };
  return {
    /** The checks before it; refused (non-retryable) with every reason. */
    async checkLiveMigration(input: { target: string; serverId: string; destination?: string; blockMigration: 'auto' | boolean }) {
      return failuresTranslated(() => checkLive(opsOf(input.target), input));
    },
    async startLiveMigration(input: { target: string; serverId: string; destination?: string; blockMigration: 'auto' | boolean; after: number }) {
      return failuresTranslated(() => startLive(opsOf(input.target), input));
    },
    /** Heartbeats Nova's progress counters; a retried attempt goes on from its last heartbeat (forced, aborted). */
    async watchLiveMigration(input: { target: string; serverId: string; requestId?: string; after: number; convergence?: ConvergencePolicy }): Promise<LiveMigrationRecord> {
      const ctx = Context.current();
      return failuresTranslated(() =>
        watchLive(opsOf(input.target), { ...input, resumed: ctx.info.heartbeatDetails as LiveProgress | undefined }, {
          heartbeat: (p) => ctx.heartbeat(p),
          sleep: (ms) => ctx.sleep(ms),
          now: () => Date.now(),
        }),
      );
    },
    async verifyLiveMigration(input: { target: string; serverId: string; source: string; record: LiveMigrationRecord }) {
      return failuresTranslated(() => verifyLive(opsOf(input.target), input));
    },
    async abortLiveMigration(input: { target: string; serverId: string; after: number }) {
      return failuresTranslated(() => abortLive(opsOf(input.target), input));
    },
    /** Host drain: the compute service disabled with the drain's reason. */
    async disableComputeHost(input: { target: string; host: string; reason: string }) {
      return failuresTranslated(() => disableHost(opsOf(input.target), input));
    },
    async serversOnComputeHost(input: { target: string; host: string }) {
      return failuresTranslated(() => serversOn(opsOf(input.target), input.host));
    },
    async enableComputeHost(input: { target: string; serviceId: string }) {
      return failuresTranslated(() => enableHost(opsOf(input.target), input));
    },
  };
}
