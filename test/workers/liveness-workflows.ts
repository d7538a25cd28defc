/** Workflows of the activity-liveness test: one activity through the control calls' options, with a test's heartbeat timeout. */
import type { Duration } from '@temporalio/common';
import { proxyActivities } from '@temporalio/workflow';
import { CONTROL_ACTIVITY_OPTIONS } from '../../workflows/activity-proxies';

export interface LivenessActivities {
  /** Runs `ms` without heartbeating; reports its attempt. */
  quietCall(ms: number): Promise<{ attempt: number }>;
  /**
   * Attempt 1 heartbeats `{ at: 7 }` and then stalls; attempt 2 runs `quietMs` without heartbeating and fails; attempt
   * 3 returns the details it started with.
   */
  stallAfterProgress(quietMs: number): Promise<{ attempt: number; startedWith: unknown }>;
}

export async function quietCallWorkflow(ms: number, heartbeatTimeout: Duration): Promise<{ attempt: number }> {
  return proxyActivities<LivenessActivities>({ ...CONTROL_ACTIVITY_OPTIONS, heartbeatTimeout, retry: { ...CONTROL_ACTIVITY_OPTIONS.retry, maximumAttempts: 1 } }).quietCall(ms);
}

export async function stallAfterProgressWorkflow(quietMs: number, heartbeatTimeout: Duration): Promise<{ attempt: number; startedWith: unknown }> {
  return proxyActivities<LivenessActivities>({ ...CONTROL_ACTIVITY_OPTIONS, heartbeatTimeout, retry: { ...CONTROL_ACTIVITY_OPTIONS.retry, initialInterval: '100ms' } }).stallAfterProgress(quietMs);
}
