import { ActivityCancellationType, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { VmigrateActivities } from '../activities';
import { NON_RETRYABLE_FAILURE_TYPES } from '../shared/failure-types';

/** The one registry of failure types retrying cannot fix (shared/failure-types.ts). */
export const NON_RETRYABLE = NON_RETRYABLE_FAILURE_TYPES;

/**
 * Where activities are sent: the shared task queue (default), or one worker host's own queue, where a task waits at
 * most `scheduleToStartTimeout` for that host's worker to take it (workflows/worker-host.ts).
 */
export interface ActivityPlacement {
  taskQueue: string;
  scheduleToStartTimeout: Duration;
}

/** Short calls against the vSphere API or the target cloud. */
export function controlActivities(placement?: ActivityPlacement) {
  return proxyActivities<VmigrateActivities>({
    ...placement,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

/** Long byte transfers (and other long jobs): liveness by heartbeat, so a dead worker is noticed within the timeout. */
export function transferActivities(heartbeatTimeoutSeconds: number, placement?: ActivityPlacement) {
  return proxyActivities<VmigrateActivities>({
    ...placement,
    startToCloseTimeout: '7 days',
    heartbeatTimeout: `${heartbeatTimeoutSeconds}s`,
    // On cancel, wait until the copy has really stopped (nbdkit gone, volume closed) before the workflow moves on.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

/** Activity failures wrap the real reason; an operator wants the innermost message. */
export function rootCauseMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}

/** The failure type at the root of an activity failure (ApplicationFailure.type), if any. */
export function rootCauseType(err: unknown): string | undefined {
  let e: unknown = err;
  let type: string | undefined;
  while (e instanceof Error) {
    const t = (e as { type?: unknown }).type;
    if (typeof t === 'string') type = t;
    e = (e as { cause?: unknown }).cause;
  }
  return type;
}

/** How a migration workflow ends when a stage fails: non-retryable, naming the stage, the root cause attached. */
export function migrationFailed(migrationId: string, stage: string, reason: string, err: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'MigrationFailed',
    message: `migration ${migrationId} failed in stage ${stage}: ${reason}`,
    cause: err instanceof Error ? err : undefined,
    nonRetryable: true,
  });
}
