import { proxyActivities } from '@temporalio/workflow';
import type { VmigrateActivities } from '../activities';
import type { TargetChoices } from '../targets/target-provider';
import { NON_RETRYABLE } from './activity-proxies';

/**
 * Reads of a target on behalf of the API, as short workflows: only workers hold the target's credentials. Nothing
 * here changes the target.
 */
const reads = proxyActivities<VmigrateActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** What a project may choose from in a target: flavors, volume types, networks with their subnets, zones. */
export async function targetChoices(input: { target?: string; project: string }): Promise<TargetChoices> {
  return reads.listTargetChoices(input);
}
