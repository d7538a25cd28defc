import { ActivityCancellationType, defineQuery, isCancellation, patched, proxyActivities, setCurrentDetails, setHandler, startChild, upsertSearchAttributes } from '@temporalio/workflow';
import type { VmigrateActivities } from '../activities';
import type { ConvergencePolicy } from '../live/convergence';
import { MigrationState } from '../shared/search-attributes';
import { controlActivities, NON_RETRYABLE, rootCauseMessage } from './activity-proxies';
import { liveMigration } from './live-migration';

/** Stopped servers are moved by cold migration (drains recorded before it started live migrations of every server). */
export const DRAIN_COLD_MOVES_PATCH = 'vmigrate-drain-cold-moves-v1';

/** A cold move lasts as long as copying the server's disks: liveness by heartbeat. */
const coldMove = proxyActivities<VmigrateActivities>({
  startToCloseTimeout: '1 day',
  heartbeatTimeout: '60s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
});

export interface HostDrainInput {
  operationId: string;
  target: { name: string };
  host: string;
  /** Why the host is drained: the compute service's disabled reason, what operators see in Nova. */
  reason: string;
  /** Live migrations at once (default 1). */
  maxInFlight?: number;
  /** Enable the compute service again once it is empty (default false: it stays disabled for the maintenance). */
  reenable?: boolean;
  blockMigration?: 'auto' | boolean;
  convergence?: ConvergencePolicy;
  requestedBy: string;
}

export type HostDrainStage = 'Queued' | 'Disable' | 'Migrate' | 'Reenable' | 'Completed' | 'Failed' | 'Cancelled';

export interface HostDrainState {
  operationId: string;
  kind: 'drain';
  stage: HostDrainStage;
  host: string;
  /** Each server's live migration (a child workflow), with when it started and ended (workflow time). */
  servers: Array<{
    serverId: string;
    name: string;
    /** The live migration's workflow id; a stopped server's cold move is named the same, without a workflow. */
    migration: string;
    /** live (a liveMigration child) or cold (a stopped server, moved by Nova's cold migration). */
    how?: 'live' | 'cold';
    startedAt?: string;
    endedAt?: string;
    to?: string;
    error?: string;
  }>;
  moved: number;
  notMoved: number;
  reenabled?: boolean;
}

export const hostDrainStateQuery = defineQuery<HostDrainState>('drainState');

/**
 * A host emptied for maintenance: its compute service disabled with the reason (nothing new lands there), every
 * running server on it live-migrated off, each as its own liveMigration (checked, watched, verified), and every
 * stopped one moved by cold migration, at most `maxInFlight` moves at once; what could not move is reported with
 * why, and the host is enabled again only when asked and empty.
 */
export async function hostDrain(input: HostDrainInput): Promise<HostDrainState> {
  const control = controlActivities();
  const target = input.target.name;
  const state: HostDrainState = { operationId: input.operationId, kind: 'drain', stage: 'Queued', host: input.host, servers: [], moved: 0, notMoved: 0 };
  setHandler(hostDrainStateQuery, () => state);
  const enter = (stage: HostDrainStage) => {
    state.stage = stage;
    upsertSearchAttributes([{ key: MigrationState, value: stage }]);
    setCurrentDetails(`**${stage}** — drain ${input.operationId} of host ${input.host}: ${state.moved} moved, ${state.notMoved} not moved of ${state.servers.length}`);
  };

  try {
    enter('Disable');
    const service = await control.disableComputeHost({ target, host: input.host, reason: input.reason });

    enter('Migrate');
    const servers = await control.serversOnComputeHost({ target, host: input.host });
    const coldMoves = patched(DRAIN_COLD_MOVES_PATCH);
    for (const server of servers) {
      const how = coldMoves && server.status === 'SHUTOFF' ? 'cold' : 'live';
      state.servers.push({ serverId: server.id, name: server.name, migration: `${input.operationId}-${server.id}`, ...(coldMoves ? { how } : {}) });
    }
    const cap = Math.max(1, input.maxInFlight ?? 1);
    const running = new Set<Promise<void>>();
    for (const entry of state.servers) {
      while (running.size >= cap) await Promise.race(running);
      const one: Promise<void> = (async () => {
        entry.startedAt = new Date().toISOString();
        try {
          if (entry.how === 'cold') {
            entry.to = (await coldMove.coldMoveServer({ target, serverId: entry.serverId, source: input.host })).to;
          } else {
            const child = await startChild(liveMigration, {
              workflowId: entry.migration,
              args: [{ operationId: entry.migration, target: input.target, serverId: entry.serverId, blockMigration: input.blockMigration ?? 'auto', ...(input.convergence ? { convergence: input.convergence } : {}), requestedBy: input.requestedBy }],
            });
            entry.to = (await child.result()).destination;
          }
          state.moved++;
        } catch (err) {
          // A cancelled drain stops here (its children are cancelled with it, and abort); a server that could not
          // move is reported and the drain goes on with the others.
          if (isCancellation(err)) throw err;
          entry.error = rootCauseMessage(err);
          state.notMoved++;
        } finally {
          entry.endedAt = new Date().toISOString();
        }
      })().finally(() => running.delete(one));
      running.add(one);
      one.catch(() => undefined); // awaited through the set; a rejection is not left unhandled
    }
    await Promise.all(running);

    if (input.reenable && state.notMoved === 0) {
      enter('Reenable');
      await control.enableComputeHost({ target, serviceId: service.serviceId });
      state.reenabled = true;
    }
  } catch (err) {
    // Cancelled: the host stays disabled (it was being emptied for a reason); the servers not moved yet stay.
    enter(isCancellation(err) ? 'Cancelled' : 'Failed');
    throw err;
  }
  enter('Completed');
  return state;
}
