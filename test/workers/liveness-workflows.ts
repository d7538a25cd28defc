/** Workflows of the activity-liveness test: one activity through the control calls' or the transfers' options, with a test's heartbeat timeout. */
import type { Duration } from '@temporalio/common';
import { proxyActivities } from '@temporalio/workflow';
import { CONTROL_ACTIVITY_OPTIONS, transferActivityOptions } from '../../workflows/activity-proxies';

export interface LivenessActivities {
  /** Runs `ms` without heartbeating; reports its attempt. */
  quietCall(ms: number): Promise<{ attempt: number }>;
  /**
   * Attempt 1 heartbeats `{ at: 1 }`, is quiet `quietMs`, heartbeats `{ at: 2 }`, is quiet `quietMs` again and fails;
   * attempt 2 returns the details it started with.
   */
  heartbeatNowAndThen(quietMs: number): Promise<{ attempt: number; startedWith: unknown }>;
  /** Attempt 1 heartbeats `{ at: 7 }` and then stalls; attempt 2 returns the details it started with. */
  stallAfterProgress(): Promise<{ attempt: number; startedWith: unknown }>;
}

const control = (heartbeatTimeout: Duration, maximumAttempts: number) =>
  proxyActivities<LivenessActivities>({ ...CONTROL_ACTIVITY_OPTIONS, heartbeatTimeout, retry: { ...CONTROL_ACTIVITY_OPTIONS.retry, initialInterval: '100ms', maximumAttempts } });

export async function quietCallWorkflow(ms: number, heartbeatTimeout: Duration): Promise<{ attempt: number }> {
  return control(heartbeatTimeout, 1).quietCall(ms);
}

export async function heartbeatNowAndThenWorkflow(quietMs: number, heartbeatTimeout: Duration): Promise<{ attempt: number; startedWith: unknown }> {
  return control(heartbeatTimeout, 2).heartbeatNowAndThen(quietMs);
}

export async function stallAfterProgressWorkflow(heartbeatTimeoutSeconds: number): Promise<{ attempt: number; startedWith: unknown }> {
  const options = transferActivityOptions(heartbeatTimeoutSeconds);
  return proxyActivities<LivenessActivities>({ ...options, retry: { ...options.retry, initialInterval: '100ms' } }).stallAfterProgress();
}
