import { stageLabel } from '../format';

/** A stage as a coloured badge: running stages, Completed, Failed and Cancelled read apart at a glance. */
export function StatusBadge({ stage }: { stage: string }) {
  const tone = stage === 'Completed' ? 'ok' : stage === 'Failed' ? 'bad' : stage === 'Cancelled' ? 'off' : stage === 'Ready' ? 'ready' : 'busy';
  return <span class={`badge badge-${tone}`}>{stageLabel(stage)}</span>;
}
