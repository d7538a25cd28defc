import { TimeoutFailure, patched } from '@temporalio/workflow';
import type { WorkerHost } from '../shared/task-queues';
import { controlActivities, transferActivities } from './activity-proxies';
import { guestActivities } from './guest-activity-proxies';

/**
 * Marks runs that keep their volume work on one worker host when the target's volumes are files on a worker's disk:
 * the host is claimed once, and every step that touches the volumes (copy or sync, conversion, finalize, boot check,
 * start, release) goes to that host's own task queue. Runs started before it use the shared queue throughout.
 */
export const WORKER_HOST_PATCH = 'vmigrate-worker-host-v1';

/** How long volume work waits for its host's worker (a restart, an upgrade) before the step fails, saying why. */
export const DEFAULT_HOST_WAIT_SECONDS = 3600;

export interface HostTuning {
  heartbeatTimeoutSeconds?: number;
  hostWaitSeconds?: number;
}

/** The activity proxies for volume work: on the claimed host's queue, or on the shared one when nothing was claimed. */
export function volumeActivities(host: WorkerHost | undefined, tuning: HostTuning) {
  const placement = host && { taskQueue: host.taskQueue, scheduleToStartTimeout: (tuning.hostWaitSeconds ?? DEFAULT_HOST_WAIT_SECONDS) * 1000 };
  return {
    control: controlActivities(placement),
    transfer: transferActivities(tuning.heartbeatTimeoutSeconds ?? 30, placement),
    guest: guestActivities(tuning.heartbeatTimeoutSeconds, placement),
  };
}

/** Claims a host for the migration's volume work if its target needs one (decided once, in the run that starts it). */
export async function claimWorkerHost(target: string | undefined): Promise<WorkerHost | undefined> {
  if (!patched(WORKER_HOST_PATCH)) return undefined;
  return (await controlActivities().claimWorkerHost({ target })) ?? undefined;
}

/** An operator's reason when volume work waited in vain for its host, else undefined. */
export function hostUnavailableReason(err: unknown, host: WorkerHost | undefined, tuning: HostTuning): string | undefined {
  if (!host) return undefined;
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    if (e instanceof TimeoutFailure && e.timeoutType === 'SCHEDULE_TO_START') {
      const waited = tuning.hostWaitSeconds ?? DEFAULT_HOST_WAIT_SECONDS;
      return (
        `no worker on host ${host.hostId} took the migration's volume work within ${waited} s; its volumes are on that host. ` +
        `Start the worker there again (VMIGRATE_HOST_ID=${host.hostId}, task queue ${host.taskQueue}), then retry the migration`
      );
    }
  }
  return undefined;
}
