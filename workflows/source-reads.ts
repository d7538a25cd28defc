import { proxyActivities } from '@temporalio/workflow';
import type { SourceCheck, SourceVmsPage, SourceVmsRequest, VmigrateActivities } from '../activities';
import type { PreflightAnswer, PreflightRequest } from '../preflight/assess-migrations';
import { NON_RETRYABLE } from './activity-proxies';

/**
 * Reads of a source on behalf of the API. They run as short workflows because only workers hold source
 * credentials: the API names a source by id, a worker logs in, reads, and the answer comes back as the result.
 * Nothing here changes the source.
 */
const reads = proxyActivities<VmigrateActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** Connectivity of several sources, checked side by side. */
export async function sourceCheck(input: { sourceIds: string[] }): Promise<SourceCheck[]> {
  return Promise.all(input.sourceIds.map((sourceId) => reads.checkSource({ sourceId })));
}

/** Preflight verdicts for a request to migrate VMs (the API's POST /preflight, and every submission). */
export async function preflightAssessment(req: PreflightRequest): Promise<PreflightAnswer> {
  return reads.assessMigrations(req);
}

/** One page of a source's inventory. */
export async function sourceInventory(input: SourceVmsRequest): Promise<SourceVmsPage> {
  return reads.listSourceVms(input);
}
