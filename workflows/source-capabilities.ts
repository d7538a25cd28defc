import { ApplicationFailure } from '@temporalio/workflow';
import type { SourceCapabilities } from '../source/source-provider';

/**
 * What a source can do besides serving disk bytes, as the workflows ask it. Plans recorded before sources declared
 * their capabilities came from vSphere, which has them all.
 */
const VSPHERE: SourceCapabilities = { powerControl: true, changeTracking: true, snapshots: true };

export function capabilitiesOf(plan: { capabilities?: SourceCapabilities }): SourceCapabilities {
  return plan.capabilities ?? VSPHERE;
}

const NEEDED_BY = { changeTracking: 'changed-block tracking', snapshots: 'snapshots of a running VM', powerControl: 'power control' } as const;

/** Refuses (non-retryable, at preflight) a migration whose source lacks what it needs, naming what is missing. */
export function requireCapabilities(plan: { name: string; capabilities?: SourceCapabilities }, needed: Array<keyof SourceCapabilities>, what: string): void {
  const have = capabilitiesOf(plan);
  const missing = needed.filter((c) => !have[c]);
  if (missing.length) {
    throw ApplicationFailure.nonRetryable(`${what} of ${plan.name} needs ${missing.map((c) => NEEDED_BY[c]).join(' and ')}, which its source cannot do; migrate it cold`, 'PreflightError');
  }
}
