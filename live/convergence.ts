/**
 * A live migration that does not converge (the guest dirties memory faster than it is copied) must not run forever.
 * Past the limit, the policy either forces it to complete (Nova's force_complete pauses the guest for the last copy)
 * or aborts it (the instance stays where it was). Pure: the watcher asks it on every look.
 */
export interface ConvergencePolicy {
  /** Seconds a live migration may run before the policy acts. */
  limitSeconds: number;
  onLimit: 'force-complete' | 'abort';
}

export const DEFAULT_CONVERGENCE: ConvergencePolicy = { limitSeconds: 1800, onLimit: 'force-complete' };

export type ConvergenceStep = { act: 'wait' } | { act: 'force-complete' | 'abort'; reason: string };

export function convergenceStep(policy: ConvergencePolicy, runningMs: number, already: { forced: boolean; aborted: boolean }): ConvergenceStep {
  if (already.aborted || runningMs < policy.limitSeconds * 1000) return { act: 'wait' };
  const reason = `it did not complete within ${policy.limitSeconds} s`;
  // A forced migration that still runs long after (the limit again, and at least a minute: the paused guest's last
  // pages must still be sent) is aborted: never left running forever.
  if (policy.onLimit === 'force-complete' && !already.forced) return { act: 'force-complete', reason };
  if (policy.onLimit === 'abort' || runningMs >= policy.limitSeconds * 1000 + Math.max(policy.limitSeconds * 1000, FORCED_GRACE_MS)) {
    return { act: 'abort', reason: already.forced ? `${reason}, even forced` : reason };
  }
  return { act: 'wait' };
}

/** The least time a forced migration is given to finish before it is aborted. */
const FORCED_GRACE_MS = 60_000;
