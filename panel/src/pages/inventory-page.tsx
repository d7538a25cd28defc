import { useState } from 'preact/hooks';
import { saveAssessmentTarget, savedAssessmentTarget, type AssessmentTarget } from '../assessment-target';
import { InventoryTable } from '../components/inventory-table';
import { TargetFields } from '../components/target-fields';
import { href } from '../hash-route';
import { useTargetChoices, useTargets } from '../target-choices';
import type { Session } from '../session';

/** One source's discovered VMs with their preflight verdicts for the chosen target, and a way into the wizard. */
export function InventoryPage({ session, sourceId }: { session: Session; sourceId: string }) {
  const [target, setTarget] = useState<AssessmentTarget>(() => savedAssessmentTarget(session.project));
  const targets = useTargets(session);
  const choices = useTargetChoices(session, target.name || targets?.defaultTarget, target.project);
  const change = (t: AssessmentTarget) => {
    setTarget(t);
    saveAssessmentTarget(t);
  };
  return (
    <main>
      <p>
        <a href={href('sources')}>← Sources</a>
      </p>
      <div class="page-head">
        <h1>Inventory of {sourceId}</h1>
        {session.principal.role !== 'reader' && (
          <a class="button" href={href('new', { source: sourceId })}>
            New Migration
          </a>
        )}
      </div>
      <details open={!target.volumeType}>
        <summary>Assess for</summary>
        <TargetFields value={target} onChange={change} projects={session.principal.projects} targets={targets} choices={choices.choices} choicesError={choices.error} />
      </details>
      <InventoryTable session={session} sourceId={sourceId} target={target} />
    </main>
  );
}
