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
  // A forced migration that still runs long after (twice the limit) is aborted: never left running forever.
  if (policy.onLimit === 'force-complete' && !already.forced) return { act: 'force-complete', reason };
  if (policy.onLimit === 'abort' || runningMs >= 2 * policy.limitSeconds * 1000) return { act: 'abort', reason: already.forced ? `${reason}, even forced` : reason };
  return { act: 'wait' };
}
