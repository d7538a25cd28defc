import { ActivityCancellationType, CancellationScope, isCancellation, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { VmigrateActivities } from '../activities';
import type { LiveMigrationInput } from '../shared/live-migration-input';
import { MigrationState } from '../shared/search-attributes';
import { controlActivities, migrationFailed, NON_RETRYABLE, rootCauseMessage } from './activity-proxies';
import { liveMigrationStateQuery, type LiveMigrationStage, type LiveMigrationState } from './live-migration-state';

/** The watch runs as long as the migration: liveness by heartbeat; cancelled, it stops looking (abort follows). */
const watch = proxyActivities<VmigrateActivities>({
  startToCloseTimeout: '1 day',
  heartbeatTimeout: '30s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
});

/**
 * A running server moved to another host of its cloud, in the stages of the product's lifecycle: Queued → Checks
 * (compute services, capacity, hypervisor, CPU; live or block) → Migrating (Nova's progress; the convergence policy
 * forces completion or aborts past its limit) → Verify (ACTIVE on the destination, the migration completed) →
 * Completed. Cancelled mid-way, the migration is aborted and the server stays ACTIVE where it was.
 */
export async function liveMigration(input: LiveMigrationInput): Promise<LiveMigrationState> {
  const control = controlActivities();
  const target = input.target.name;
  const state: LiveMigrationState = { operationId: input.operationId, kind: 'live', stage: 'Queued', stages: [], serverId: input.serverId };
  setHandler(liveMigrationStateQuery, () => state);
  const enter = (stage: LiveMigrationStage) => {
    state.stage = stage;
    state.stages.push({ stage, at: new Date().toISOString() });
    upsertSearchAttributes([{ key: MigrationState, value: stage }]);
    setCurrentDetails(`**${stage}** — live migration ${input.operationId} of server ${state.serverName ?? input.serverId}${state.source ? ` from ${state.source}` : ''}`);
  };
  let after: number | undefined;
  try {
    enter('Checks');
    const check = await control.checkLiveMigration({ target, serverId: input.serverId, destination: input.destination, blockMigration: input.blockMigration });
    Object.assign(state, { serverName: check.server.name, source: check.server.host, candidates: check.prerequisites.candidates, mode: check.prerequisites.mode });
    after = check.after;

    enter('Migrating');
    const started = await control.startLiveMigration({
      target,
      operationId: input.operationId,
      serverId: input.serverId,
      source: check.server.host!,
      destination: input.destination,
      blockMigration: input.blockMigration,
      after,
    });
    const record = await watch.watchLiveMigration({ target, serverId: input.serverId, requestId: started.requestId, after, convergence: input.convergence });
    state.record = record;

    enter('Verify');
    const placed = await control.verifyLiveMigration({ target, serverId: input.serverId, source: check.server.host!, record });
    state.destination = placed.host;

    enter('Completed');
    return state;
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        if (after !== undefined) await control.abortLiveMigration({ target, serverId: input.serverId, after });
      });
      enter('Cancelled');
      throw err;
    }
    const failedIn = state.stage;
    state.error = rootCauseMessage(err);
    enter('Failed');
    throw migrationFailed(input.operationId, failedIn, state.error, err);
  }
}
