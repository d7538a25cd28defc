import { COLD_STAGES, WARM_STAGES } from '../../../shared/migration-stages';
import { stageLabel } from '../format';

/**
 * The lifecycle as the product documents it, in order, with where the migration is: stages before it done, its
 * own current (or failed/cancelled there), the rest to come. Warm migrations have their own stages.
 */
export function StageTimeline({ kind, stage, status, failedIn }: { kind: string; stage: string; status: string; failedIn?: string }) {
  const stages: readonly string[] = kind === 'warm' ? WARM_STAGES : COLD_STAGES;
  const ended = stage === 'Failed' || stage === 'Cancelled';
  const at = stages.indexOf(ended ? (failedIn ?? '') : stage);
  return (
    <ol class="timeline" aria-label="Stages">
      {stages.map((s, i) => {
        const state = stage === 'Completed' || i < at ? 'done' : i === at ? (ended ? stage.toLowerCase() : status.toUpperCase() === 'RUNNING' ? 'current' : 'done') : 'todo';
        return (
          <li key={s} class={`stage stage-${state}`} aria-current={state === 'current' ? 'step' : undefined}>
            <span class="stage-dot" aria-hidden="true" />
            <span class="stage-name">{stageLabel(s)}</span>
            <span class="visually-hidden">{state === 'done' ? ' (done)' : state === 'current' ? ' (in progress)' : state === 'todo' ? '' : ` (${state})`}</span>
          </li>
        );
      })}
    </ol>
  );
}
