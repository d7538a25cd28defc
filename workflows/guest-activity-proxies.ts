import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { VmigrateActivities } from '../activities';
import { NON_RETRYABLE_FAILURE_TYPES } from '../shared/failure-types';
import type { ActivityPlacement } from './activity-proxies';

/**
 * Guest work (libguestfs inspection, virt-v2v-in-place, the boot check) takes minutes without byte progress, most of
 * all under TCG: liveness comes from heartbeats (sent every 5 s while the tools run), not from a tight start-to-close.
 */

/** The one registry of failure types retrying cannot fix (shared/failure-types.ts). */
export const GUEST_NON_RETRYABLE = NON_RETRYABLE_FAILURE_TYPES;

export function guestActivities(heartbeatTimeoutSeconds = 60, placement?: ActivityPlacement) {
  const heartbeatTimeout = Math.max(60, heartbeatTimeoutSeconds) * 1000;
  return {
    /** One appliance over all disks; a retry relaunches it. A cancel waits until it no longer reads the source. */
    inspection: proxyActivities<VmigrateActivities>({
      ...placement,
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '5s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: GUEST_NON_RETRYABLE },
    }),
    /**
     * A failed conversion is retried on fresh clones of the copied volumes (nothing is copied again); three attempts,
     * since a conversion that fails twice the same way will not pass a third time.
     */
    conversion: proxyActivities<VmigrateActivities>({
      ...placement,
      startToCloseTimeout: '3 hours',
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3, nonRetryableErrorTypes: GUEST_NON_RETRYABLE },
    }),
    /** The boot check reports a guest that does not boot as a result; only qemu failing to run is retried (once). */
    validation: proxyActivities<VmigrateActivities>({
      ...placement,
      startToCloseTimeout: '2 hours',
      heartbeatTimeout,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '5s', maximumAttempts: 2, nonRetryableErrorTypes: GUEST_NON_RETRYABLE },
    }),
  };
}
