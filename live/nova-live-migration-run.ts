import { convergenceStep, DEFAULT_CONVERGENCE, type ConvergencePolicy } from './convergence';
import { LiveMigrationError, LiveMigrationPrecheckError, liveMigrationFailure } from './live-migration-errors';
import { checkLivePrerequisites, type ComputeHostFacts, type LivePrerequisites } from './live-prerequisites';
import type { LiveMigrationDriver } from './live-migration-driver';
import { awaitFailureReason } from './nova-failure-reason';
import type { NovaHostOperations } from './nova-host-operations';
import { ENDED_MIGRATION_STATUSES, type LiveMigrationRecord, type ServerPlacement } from '../targets/openstack/nova-live-migrations';
import { freeCapacity } from '../targets/openstack/placement-capacity';

/**
 * One live migration through Nova, step by step (the `liveMigration` workflow's activities are thin over these):
 * check, start, watch until it ends (progress reported, the convergence policy applied), verify, or abort. A step
 * that is run again after a crash finds what the earlier attempt did, by the migrations Nova has recorded for the
 * server since the check (`after`: the newest one's id then).
 */

export interface LiveCheck {
  server: ServerPlacement;
  prerequisites: LivePrerequisites;
  /** The server's newest live migration before this one (0: none): ours is the next. */
  after: number;
}

export interface LiveProgress {
  migrationId?: number;
  status: string;
  runningMs: number;
  memory?: LiveMigrationRecord['memory'];
  disk?: LiveMigrationRecord['disk'];
  /** QEMU's job info, where the hypervisor is asked directly (libvirt): all data, its dirty rate, its forecast. */
  data?: LiveMigrationRecord['memory'];
  dirtyRateBytesPerSecond?: number;
  expectedDowntimeMs?: number;
  /** Pre-copy passes over memory so far. */
  iteration?: number;
  forced: boolean;
  aborted: boolean;
  /** Forced by switching to post-copy (libvirt, where the target permits it) rather than by pausing the guest. */
  postCopy?: boolean;
}

async function hostFacts(ops: NovaHostOperations): Promise<ComputeHostFacts[]> {
  const [services, hypervisors] = await Promise.all([ops.nova.computeServices(), ops.nova.hypervisors()]);
  return Promise.all(
    services.map(async (service) => {
      const hypervisor = hypervisors.find((h) => h.host === service.host);
      const free = hypervisor ? await freeCapacity(ops.placement, hypervisor.id).catch(() => undefined) : undefined;
      return { service, ...(hypervisor ? { hypervisor } : {}), ...(free ? { free } : {}) };
    }),
  );
}

export async function checkLive(ops: NovaHostOperations, input: { serverId: string; destination?: string; blockMigration: 'auto' | boolean }): Promise<LiveCheck> {
  const server = await ops.nova.server(input.serverId);
  const prerequisites = checkLivePrerequisites(server, await hostFacts(ops), input);
  if (!prerequisites.ok) throw new LiveMigrationPrecheckError(`server ${server.name} cannot be live-migrated: ${prerequisites.problems.join('; ')}`, 'Fix what the checks name and migrate again');
  const after = (await ops.nova.liveMigrations(input.serverId))[0]?.id ?? 0;
  return { server, prerequisites, after };
}

/** Starts it unless a migration after `after` exists already (an earlier attempt started it). */
export async function startLive(ops: NovaHostOperations, input: { serverId: string; destination?: string; blockMigration: 'auto' | boolean; after: number }): Promise<{ requestId?: string; alreadyStarted: boolean }> {
  if ((await ops.nova.liveMigrations(input.serverId)).some((m) => m.id > input.after)) {
    // Started by an attempt that died before it returned: its request id is the newest live-migration action's.
    const requestId = await ops.nova.latestActionRequest(input.serverId, 'live-migration');
    return { ...(requestId ? { requestId } : {}), alreadyStarted: true };
  }
  const requestId = await ops.nova.liveMigrate(input.serverId, { ...(input.destination ? { host: input.destination } : {}), blockMigration: input.blockMigration });
  return { ...(requestId ? { requestId } : {}), alreadyStarted: false };
}

export interface WatchHooks {
  heartbeat(p: LiveProgress): void;
  /** Resolves after `ms`, or rejects when the watch is cancelled. */
  sleep(ms: number): Promise<void>;
  now(): number;
}

/** Until the migration ends: its record when completed, a typed error (with Nova's reason) when not. */
export async function watchLive(
  ops: NovaHostOperations,
  input: { serverId: string; requestId?: string; after: number; convergence?: ConvergencePolicy; resumed?: LiveProgress },
  hooks: WatchHooks,
): Promise<LiveMigrationRecord> {
  const policy = input.convergence ?? DEFAULT_CONVERGENCE;
  const started = hooks.now() - (input.resumed?.runningMs ?? 0);
  const done = { forced: input.resumed?.forced ?? false, aborted: input.resumed?.aborted ?? false };
  let abortReason: string | undefined;
  for (;;) {
    const ours = (await ops.nova.liveMigrations(input.serverId)).filter((m) => m.id > input.after).at(-1);
    const live = ours ? (await ops.nova.inProgress(input.serverId)).find((m) => m.id === ours.id) : undefined;
    const record = live ?? ours;
    const progress: LiveProgress = { ...(record ? { migrationId: record.id } : {}), status: record?.status ?? 'accepted', runningMs: hooks.now() - started, memory: record?.memory, disk: record?.disk, ...done };
    hooks.heartbeat(progress);
    if (ours && ENDED_MIGRATION_STATUSES.includes(ours.status)) {
      if (ours.status === 'completed' || ours.status === 'done') return ours;
      if (ours.status === 'cancelled' && done.aborted) throw new LiveMigrationError(`the live migration was aborted: ${abortReason ?? 'it did not converge'}`, 'The instance stays ACTIVE on its source; migrate it when it is less busy, or with force-complete');
      const why = (await awaitFailureReason(ops.nova, input.serverId, input.requestId, hooks.sleep)) ?? `Nova's migration ${ours.id} ended ${ours.status}`;
      throw liveMigrationFailure(why);
    }
    if (record && record.status === 'running') {
      const step = convergenceStep(policy, progress.runningMs, done);
      if (step.act === 'force-complete') {
        await ops.nova.forceComplete(input.serverId, record.id);
        done.forced = true;
      } else if (step.act === 'abort') {
        await ops.nova.abort(input.serverId, record.id);
        done.aborted = true;
        abortReason = step.reason;
      }
    }
    await hooks.sleep(1000);
  }
}

/** After it completed: the server ACTIVE on the host the migration names, not the one it left. */
export async function verifyLive(ops: NovaHostOperations, input: { serverId: string; source: string; record: LiveMigrationRecord }): Promise<ServerPlacement> {
  const server = await ops.nova.server(input.serverId);
  if (server.status !== 'ACTIVE' || server.host !== input.record.destCompute || server.host === input.source) {
    throw new LiveMigrationError(
      `after the live migration server ${server.name} is ${server.status} on ${server.host ?? 'no host'}, not ACTIVE on ${input.record.destCompute}`,
      "Check the server's console and its instance actions (openstack server event list)",
    );
  }
  return server;
}

/** Aborts our migration if it still runs (a cancel): the server stays ACTIVE where it was. */
export async function abortLive(ops: NovaHostOperations, input: { serverId: string; after: number }): Promise<{ aborted: boolean }> {
  const running = (await ops.nova.inProgress(input.serverId)).filter((m) => m.id > input.after && !ENDED_MIGRATION_STATUSES.includes(m.status));
  for (const m of running) await ops.nova.abort(input.serverId, m.id);
  return { aborted: running.length > 0 };
}

/** The steps above as a live-migration driver of an OpenStack target. */
export function novaLiveMigrationDriver(ops: NovaHostOperations): LiveMigrationDriver {
  return {
    check: (input) => checkLive(ops, input),
    start: (input) => startLive(ops, input),
    watch: (input, hooks) => watchLive(ops, input, hooks),
    verify: (input) => verifyLive(ops, input),
    abort: (input) => abortLive(ops, input),
  };
}
