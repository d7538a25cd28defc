import { defineQuery, isCancellation, setCurrentDetails, setHandler, startChild, upsertSearchAttributes } from '@temporalio/workflow';
import type { ConvergencePolicy } from '../live/convergence';
import { MigrationState } from '../shared/search-attributes';
import { controlActivities, rootCauseMessage } from './activity-proxies';
import { liveMigration } from './live-migration';

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
  servers: Array<{ serverId: string; name: string; migration: string; startedAt?: string; endedAt?: string; to?: string; error?: string }>;
  moved: number;
  notMoved: number;
  reenabled?: boolean;
}

export const hostDrainStateQuery = defineQuery<HostDrainState>('drainState');

/**
 * A host emptied for maintenance: its compute service disabled with the reason (nothing new lands there), every
 * server on it live-migrated off, at most `maxInFlight` at once, each as its own liveMigration (checked, watched,
 * verified); what could not move is reported with why, and the host is enabled again only when asked and empty.
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
    for (const server of servers) state.servers.push({ serverId: server.id, name: server.name, migration: `${input.operationId}-${server.id}` });
    const cap = Math.max(1, input.maxInFlight ?? 1);
    const running = new Set<Promise<void>>();
    for (const entry of state.servers) {
      while (running.size >= cap) await Promise.race(running);
      const one: Promise<void> = (async () => {
        entry.startedAt = new Date().toISOString();
        try {
          const child = await startChild(liveMigration, {
            workflowId: entry.migration,
            args: [{ operationId: entry.migration, target: input.target, serverId: entry.serverId, blockMigration: input.blockMigration ?? 'auto', ...(input.convergence ? { convergence: input.convergence } : {}), requestedBy: input.requestedBy }],
          });
          const result = await child.result();
          entry.to = result.destination;
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
