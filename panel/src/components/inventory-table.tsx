import { ColumnHeads } from './column-heads';
import { useEffect, useState } from 'preact/hooks';
import { ApiClient } from '../api-client';
import type { InventoryPage, InventoryVm, PreflightAnswer, Verdict } from '../api-shapes';
import { targetBody, type AssessmentTarget } from '../assessment-target';
import { bytes } from '../format';
import type { Session } from '../session';
import { ChoiceFilter } from './choice-filter';
import { ProblemNotice } from './problem-notice';
import { TokenPager } from './token-pager';
import { blocksSelection, VerdictBadge } from './verdict-badge';

const PAGE = 50;

export interface InventorySelection {
  selected: InventoryVm[];
  toggle(vm: InventoryVm, verdict: Verdict | undefined): void;
}

/**
 * A source's VMs, a page at a time, searched and filtered by the API, each with its preflight verdict for `target`
 * (the API's rules, asked once per page). With `selection`, VMs are picked with a checkbox; a Fail VM cannot be.
 */
export function InventoryTable({ session, sourceId, target, kind, selection }: { session: Session; sourceId: string; target?: AssessmentTarget; kind?: 'cold' | 'warm'; selection?: InventorySelection }) {
  const [name, setName] = useState('');
  const [powerState, setPowerState] = useState('');
  const [pages, setPages] = useState<string[]>([]);
  const [page, setPage] = useState<InventoryPage>();
  const [verdicts, setVerdicts] = useState<Map<string, Verdict>>(new Map());
  const [error, setError] = useState<unknown>();
  const [assessError, setAssessError] = useState<unknown>();
  const pageToken = pages.at(-1);
  const assessable = !!target?.project && !!target.volumeType;

  useEffect(() => setPages([]), [name, powerState, sourceId]);
  useEffect(() => {
    let stop = false;
    setError(undefined);
    session.api
      .get<InventoryPage>(ApiClient.path('/sources/:id/vms', { id: sourceId }), { name: name || undefined, powerState: powerState || undefined, limit: PAGE, pageToken })
      .then((p) => !stop && setPage(p))
      .catch((err) => !stop && setError(err));
    return () => void (stop = true);
  }, [session, sourceId, name, powerState, pageToken]);

  useEffect(() => {
    if (!page?.vms.length || !assessable) return setVerdicts(new Map());
    let stop = false;
    setAssessError(undefined);
    session.api
      .post<PreflightAnswer>('/preflight', { kind: kind ?? 'cold', sourceId, vms: page.vms.map((v) => ({ moref: v.moref })), target: targetBody(target!) })
      .then((a) => !stop && setVerdicts(new Map(a.verdicts.map((v) => [v.vm.moref ?? v.vm.name ?? '', v]))))
      .catch((err) => !stop && (setVerdicts(new Map()), setAssessError(err)));
    return () => void (stop = true);
  }, [session, page, target?.name, target?.project, target?.volumeType, kind]);

  return (
    <div class="inventory">
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" placeholder="part of a VM name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <ChoiceFilter label="Power" value={powerState} choices={[['poweredOn', 'on'], ['poweredOff', 'off'], ['suspended', 'suspended']]} onChange={setPowerState} />
      </form>
      <ProblemNotice error={error} what="Reading the inventory" />
      <ProblemNotice error={assessError} what="Preflight" />
      {!assessable && <p class="muted">Choose a project and volume type to see each VM's preflight verdict.</p>}
      {page && (
        <>
          <p class="muted">
            {page.total} VMs · read {new Date(page.readAt).toLocaleTimeString()}
          </p>
          <table class="list">
            <ColumnHeads names={[...(selection ? [''] : []), 'VM', 'Power', 'Guest', 'CPU / memory', 'Disks', 'Verdict']} />
            <tbody>
              {page.vms.map((vm) => {
                const verdict = verdicts.get(vm.moref);
                const blocked = (verdict && blocksSelection(verdict)) || (selection && assessable && !verdict);
                const checked = !!selection?.selected.some((s) => s.moref === vm.moref);
                return (
                  <tr key={vm.moref} data-vm={vm.name} class={blocked ? 'blocked' : ''}>
                    {selection && (
                      <td>
                        <input
                          type="checkbox"
                          id={`pick-${vm.moref}`}
                          aria-label={`Select ${vm.name}`}
                          checked={checked}
                          disabled={blocked && !checked}
                          title={verdict && blocksSelection(verdict) ? 'Preflight failed: this VM cannot be migrated as it is' : undefined}
                          onChange={() => selection.toggle(vm, verdict)}
                        />
                      </td>
                    )}
                    <td data-label="VM">
                      <strong>{vm.name}</strong>
                      <div class="muted">{[vm.moref, vm.folder].filter(Boolean).join(' · ')}</div>
                    </td>
                    <td data-label="Power">{vm.powerState}</td>
                    <td data-label="Guest">
                      {vm.guest.fullName ?? vm.guest.id} <span class="muted">({vm.firmware}{vm.secureBoot ? ', Secure Boot' : ''})</span>
                    </td>
                    <td data-label="CPU / memory">
                      {vm.cpus} vCPU · {bytes(vm.memoryMB * 2 ** 20)}
                    </td>
                    <td data-label="Disks">
                      {vm.disks.length} · {bytes(vm.disks.reduce((s, d) => s + d.capacityBytes, 0))}
                    </td>
                    <td data-label="Verdict">{assessable ? <VerdictBadge verdict={verdict} networksLater /> : '—'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <TokenPager label="Inventory pages" pages={pages} next={page.nextPageToken} onChange={setPages} />
        </>
      )}
    </div>
  );
}
