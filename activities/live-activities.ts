import { Context } from '@temporalio/activity';
import type { ConvergencePolicy } from '../live/convergence';
import { HostOperationsNotConfiguredError, novaHostOperations, type NovaHostOperations } from '../live/nova-host-operations';
import { disableHost, enableHost, serversOn } from '../live/nova-host-drain';
import { moveStoppedServer, type ColdMoveProgress } from '../live/nova-cold-move';
import path from 'node:path';
import { libvirtLiveMigrationDriver } from '../live/libvirt-live-migration-run';
import type { LiveMigrationDriver } from '../live/live-migration-driver';
import { novaLiveMigrationDriver, type LiveProgress } from '../live/nova-live-migration-run';
import { LibvirtHosts } from '../targets/libvirt/libvirt-hosts';
import type { LiveMigrationRecord } from '../targets/openstack/nova-live-migrations';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';

export type { LiveCheck, LiveProgress } from '../live/nova-live-migration-run';

/**
 * Live migration between a target's hosts: thin over its driver (live/nova-live-migration-run.ts for an OpenStack
 * cloud, live/libvirt-live-migration-run.ts for libvirt hosts). Host drain goes through Nova, which also moves a
 * drained host's stopped servers by cold migration (live/nova-cold-move.ts).
 */
export function createLiveActivities(deps: ActivityDeps) {
  const sessions = new Map<string, NovaHostOperations>();
  const drivers = new Map<string, LiveMigrationDriver>();
  const driverOf = (target: string): LiveMigrationDriver => {
    const existing = drivers.get(target);
    if (existing) return existing;
    const cfg = deps.config.targets[target];
    const driver =
      cfg?.driver === 'libvirt'
        ? libvirtLiveMigrationDriver({ hosts: new LibvirtHosts(target, cfg), logDir: path.join(deps.config.workDir, 'live-migrations') })
        : novaLiveMigrationDriver(opsOf(target));
    drivers.set(target, driver);
    return driver;
  };
  const opsOf = (target: string): NovaHostOperations => {
    const existing = sessions.get(target);
    if (existing) return existing;
    const cfg = deps.config.targets[target];
    if (!cfg || cfg.driver !== 'openstack') throw new HostOperationsNotConfiguredError(`target ${target} is neither an OpenStack nor a libvirt target: live migration and host drain need one`);
    const ops = novaHostOperations(target, cfg);
    sessions.set(target, ops);
    return ops;
  };
  return {
    /** The checks before it; refused (non-retryable) with every reason. */
    async checkLiveMigration(input: { target: string; serverId: string; destination?: string; blockMigration: 'auto' | boolean }) {
      return failuresTranslated(() => driverOf(input.target).check(input));
    },
    async startLiveMigration(input: { target: string; operationId: string; serverId: string; source: string; destination?: string; blockMigration: 'auto' | boolean; after: number }) {
      return failuresTranslated(() => driverOf(input.target).start(input));
    },
    /** Heartbeats Nova's progress counters; a retried attempt goes on from its last heartbeat (forced, aborted). */
    async watchLiveMigration(input: { target: string; serverId: string; requestId?: string; after: number; convergence?: ConvergencePolicy }): Promise<LiveMigrationRecord> {
      const ctx = Context.current();
      return failuresTranslated(() =>
        driverOf(input.target).watch({ ...input, resumed: ctx.info.heartbeatDetails as LiveProgress | undefined }, {
          heartbeat: (p) => ctx.heartbeat(p),
          sleep: (ms) => ctx.sleep(ms),
          now: () => Date.now(),
        }),
      );
    },
    async verifyLiveMigration(input: { target: string; serverId: string; source: string; record: LiveMigrationRecord }) {
      return failuresTranslated(() => driverOf(input.target).verify(input));
    },
    async abortLiveMigration(input: { target: string; serverId: string; after: number }) {
      return failuresTranslated(() => driverOf(input.target).abort(input));
    },
    /** Host drain: the compute service disabled with the drain's reason. */
    async disableComputeHost(input: { target: string; host: string; reason: string }) {
      return failuresTranslated(() => disableHost(opsOf(input.target), input));
    },
    async serversOnComputeHost(input: { target: string; host: string }) {
      return failuresTranslated(() => serversOn(opsOf(input.target), input.host));
    },
    /** A stopped server on a drained host, moved off by cold migration; a retry goes on from its heartbeat. */
    async coldMoveServer(input: { target: string; serverId: string; source: string }) {
      const ctx = Context.current();
      return failuresTranslated(() =>
        moveStoppedServer(opsOf(input.target), { ...input, resumed: ctx.info.heartbeatDetails as ColdMoveProgress | undefined }, {
          heartbeat: (p) => ctx.heartbeat(p),
          sleep: (ms) => ctx.sleep(ms),
        }),
      );
    },
    async enableComputeHost(input: { target: string; serviceId: string }) {
      return failuresTranslated(() => enableHost(opsOf(input.target), input));
    },
  };
}
