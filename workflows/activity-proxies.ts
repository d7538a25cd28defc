import { ActivityCancellationType, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { ActivityOptions, Duration } from '@temporalio/common';
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

/**
 * Short calls against the vSphere API or the target cloud. Their worker heartbeats for them while they run
 * (workers/activity-liveness.ts): a task lost on its way to a worker that was stopping is tried again after the heartbeat
 * timeout, not at the end of the five minutes; a call that is slow but running is not cut short.
 */
export function controlActivities(placement?: ActivityPlacement) {
  return proxyActivities<VmigrateActivities>({ ...placement, ...CONTROL_ACTIVITY_OPTIONS });
}

export const CONTROL_ACTIVITY_OPTIONS = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8, nonRetryableErrorTypes: NON_RETRYABLE },
} satisfies ActivityOptions;

/** Long byte transfers (and other long jobs): liveness by heartbeat, so a dead worker is noticed within the timeout. */
export function transferActivities(heartbeatTimeoutSeconds: number, placement?: ActivityPlacement) {
  return proxyActivities<VmigrateActivities>({ ...placement, ...transferActivityOptions(heartbeatTimeoutSeconds) });
}

export function transferActivityOptions(heartbeatTimeoutSeconds: number) {
  return {
    startToCloseTimeout: '7 days',
    heartbeatTimeout: `${heartbeatTimeoutSeconds}s`,
    // On cancel, wait until the copy has really stopped (nbdkit gone, volume closed) before the workflow moves on.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
  } satisfies ActivityOptions;
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
