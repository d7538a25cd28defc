import type { Verdict } from '../api-shapes';

/**
 * Whether a verdict keeps a VM from being picked: a failed rule other than its networks. Networks are mapped in a
 * later step of the wizard, and the summary asks preflight again with them, so an unmapped NIC is work to do there.
 */
export function blocksSelection(v: Verdict): boolean {
  return v.reasons.some((r) => r.severity === 'fail' && r.code !== 'network.unmapped');
}

/**
 * A VM's preflight verdict: Pass, Warn or Fail, with the reasons the rules gave (code and message). With
 * `networksLater` (the inventory, the wizard's VM step: nothing is mapped yet) an unmapped network is shown as a step
 * still to take, and the verdict is the one of the other rules.
 */
export function VerdictBadge({ verdict, networksLater }: { verdict?: Verdict; networksLater?: boolean }) {
  if (!verdict) return <span class="badge badge-off">not assessed</span>;
  const pending = (r: Verdict['reasons'][number]) => networksLater && r.code === 'network.unmapped';
  const shown = networksLater ? (blocksSelection(verdict) ? 'Fail' : verdict.reasons.some((r) => r.severity === 'warn') ? 'Warn' : 'Pass') : verdict.verdict;
  const tone = shown === 'Pass' ? 'ok' : shown === 'Warn' ? 'ready' : 'bad';
  return (
    <span class="verdict">
      <span class={`badge badge-${tone}`}>{shown}</span>
      {verdict.reasons.length > 0 && (
        <ul class="reasons">
          {verdict.reasons.map((r) => (
            <li key={r.code} class={`reason ${pending(r) ? 'reason-todo' : `reason-${r.severity}`}`}>
              <code>{r.code}</code> {pending(r) ? 'its networks are mapped in the Networks step' : r.message}
            </li>
          ))}
        </ul>
      )}
    </span>
  );
}
