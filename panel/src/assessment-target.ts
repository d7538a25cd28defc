/**
 * Where VMs are assessed for: preflight's verdicts depend on the target (its flavors, quotas, networks), so the
 * inventory and the wizard ask the API with one. The caller's last choice is kept for this tab.
 */
export interface AssessmentTarget {
  /** A configured target; empty: the service's default target. */
  name: string;
  project: string;
  volumeType: string;
}

const KEY = 'vmigrate.assessmentTarget';

export function savedAssessmentTarget(project: string | undefined): AssessmentTarget {
  const kept = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as AssessmentTarget | null;
  return kept && (!project || kept.project === project) ? kept : { name: '', project: project ?? '', volumeType: '' };
}

export function saveAssessmentTarget(t: AssessmentTarget): void {
  sessionStorage.setItem(KEY, JSON.stringify(t));
}

/** The `target` of a preflight or submission body for it (the target's name only when one was chosen). */
export function targetBody(t: AssessmentTarget): { name?: string; project: string; volumeType: string } {
  return { ...(t.name ? { name: t.name } : {}), project: t.project, volumeType: t.volumeType };
}
