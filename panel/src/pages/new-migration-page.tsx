import { ColumnHeads } from '../components/column-heads';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiProblem } from '../api-client';
import type { InventoryVm, MigrationRequest, PreflightAnswer, Source, Verdict } from '../api-shapes';
import { saveAssessmentTarget, savedAssessmentTarget, targetBody, type AssessmentTarget } from '../assessment-target';
import { FieldErrors } from '../components/field-errors';
import { InventoryTable } from '../components/inventory-table';
import { ProblemNotice } from '../components/problem-notice';
import { ChoiceInput } from '../components/choice-input';
import { TargetFields } from '../components/target-fields';
import { blocksSelection, VerdictBadge } from '../components/verdict-badge';
import { bytes, duration } from '../format';
import { href } from '../hash-route';
import { useTargetChoices, useTargets } from '../target-choices';
import type { Session } from '../session';

const STEPS = ['Migration', 'VMs', 'Instance', 'Networks', 'Options', 'Summary'] as const;
type Step = (typeof STEPS)[number];

/** Which step holds a field the API names, so its reason is shown there. */
function stepOf(field: string): Step {
  const f = field.replace(/^body\./, '');
  if (/^(sourceId|kind|target\.(name|project|volumeType))/.test(f)) return 'Migration';
  if (/^vms?\b/.test(f)) return 'VMs';
  if (/^target\.networks/.test(f)) return 'Networks';
  if (/^target\./.test(f)) return 'Instance';
  return 'Options';
}

interface NetworkChoice {
  targetNetwork: string;
  targetSubnet: string;
  preserveMac: boolean;
  keepIps: boolean;
}

interface WizardState {
  kind: 'cold' | 'warm';
  sourceId: string;
  target: AssessmentTarget;
  vms: InventoryVm[];
  instance: { instanceName: string; flavor: string; availabilityZone: string; diskBus: string; machineType: string; keyName: string; start: boolean; keepOnFailure: boolean };
  /** By source NIC (its MAC). */
  networks: Record<string, NetworkChoice>;
  options: {
    startReplication: boolean;
    cleanShutdown: boolean;
    shutdownTimeoutSeconds: string;
    syncIntervalSeconds: string;
    warmShutdownSource: boolean;
    startTarget: boolean;
    autoDeploy: boolean;
    cutoverAt: string;
    convert: 'auto' | 'force' | 'skip';
    bootCheck: boolean;
  };
}

function requestOf(s: WizardState): MigrationRequest {
  const i = s.instance;
  const o = s.options;
  // Each NIC by its MAC: one request carries the NICs of all its VMs, and the API gives each VM those of its own.
  const networks = s.vms
    .flatMap((vm) => vm.nics)
    .filter((nic) => s.networks[nic.macAddress]?.targetNetwork)
    .map((nic) => {
      const n = s.networks[nic.macAddress]!;
      return { sourceMac: nic.macAddress, targetNetwork: n.targetNetwork, ...(n.targetSubnet ? { targetSubnet: n.targetSubnet } : {}), ...(n.preserveMac ? { preserveMac: true } : {}), ...(n.keepIps ? { keepIps: true } : {}) };
    });
  const num = (v: string) => (v.trim() === '' ? undefined : Number(v));
  return {
    kind: s.kind,
    sourceId: s.sourceId,
    ...(s.vms.length === 1 ? { vm: { moref: s.vms[0]!.moref } } : { vms: s.vms.map((v) => ({ moref: v.moref })) }),
    target: {
      ...targetBody(s.target),
      ...(i.instanceName && s.vms.length === 1 ? { instanceName: i.instanceName } : {}),
      ...(i.flavor ? { flavor: i.flavor } : {}),
      ...(i.availabilityZone ? { availabilityZone: i.availabilityZone } : {}),
      ...(i.diskBus ? { diskBus: i.diskBus as 'virtio' } : {}),
      ...(i.machineType ? { machineType: i.machineType as 'pc-q35' } : {}),
      ...(i.keyName ? { keyName: i.keyName } : {}),
      ...(i.start ? { start: true } : {}),
      ...(i.keepOnFailure ? { keepOnFailure: true } : {}),
      networks,
    },
    ...(o.startReplication ? {} : { startReplication: false }),
    ...(s.kind === 'cold' && o.cleanShutdown ? { cold: { shutdownSource: true, ...(num(o.shutdownTimeoutSeconds) ? { shutdownTimeoutSeconds: num(o.shutdownTimeoutSeconds) } : {}) } } : {}),
    ...(s.kind === 'warm'
      ? {
          warm: {
            ...(num(o.syncIntervalSeconds) ? { syncIntervalSeconds: num(o.syncIntervalSeconds) } : {}),
            shutdownSource: o.warmShutdownSource,
            ...(o.startTarget ? { startTarget: true } : {}),
            ...(o.autoDeploy ? { autoDeploy: true } : {}),
            ...(o.cutoverAt ? { cutoverAt: new Date(o.cutoverAt).toISOString() } : {}),
          },
        }
      : {}),
    guest: { convert: o.convert, bootCheck: o.bootCheck },
  } as MigrationRequest;
}

/**
 * New Migration: the product's wizard, one step at a time — the migration (kind, source, target), the VMs (from the
 * discovered inventory, each with its verdict; a Fail cannot be picked), the instance, the network of each source
 * NIC, the options, and a summary with the estimate and what will be made — then Submit. Every check is the API's:
 * the summary asks preflight with the whole request, and a refusal's field reasons appear at their fields. Going
 * back loses nothing: the whole request is one state.
 */
export function NewMigrationPage({ session, query }: { session: Session; query: URLSearchParams }) {
  const [step, setStep] = useState<Step>('Migration');
  const [sources, setSources] = useState<Source[]>();
  const [state, setState] = useState<WizardState>(() => ({
    kind: query.get('kind') === 'warm' ? 'warm' : 'cold',
    sourceId: query.get('source') ?? '',
    target: savedAssessmentTarget(session.project),
    vms: [],
    instance: { instanceName: '', flavor: '', availabilityZone: '', diskBus: '', machineType: '', keyName: '', start: false, keepOnFailure: false },
    networks: {},
    options: { startReplication: true, cleanShutdown: false, shutdownTimeoutSeconds: '', syncIntervalSeconds: '', warmShutdownSource: true, startTarget: false, autoDeploy: false, cutoverAt: '', convert: 'auto', bootCheck: false },
  }));
  const targets = useTargets(session);
  const { choices, error: choicesError } = useTargetChoices(session, state.target.name || targets?.defaultTarget, state.target.project);
  const [review, setReview] = useState<PreflightAnswer>();
  const [problem, setProblem] = useState<unknown>();
  const [submitting, setSubmitting] = useState(false);
  // One key per wizard: a double click or a retry after a lost answer submits once.
  const [idempotencyKey] = useState(() => `panel-${crypto.randomUUID()}`);

  useEffect(() => {
    session.api
      .get<{ sources: Source[] }>('/sources')
      .then((a) => {
        setSources(a.sources);
        setState((s) => (s.sourceId || !a.sources[0] ? s : { ...s, sourceId: a.sources[0].id }));
      })
      .catch(setProblem);
  }, [session]);

  const errorsFor = (field: string) => (problem instanceof ApiProblem ? problem.reasonsFor(field) : []);
  const update = <K extends keyof WizardState>(k: K, v: WizardState[K]) => setState((s) => ({ ...s, [k]: v }));
  const request = useMemo(() => requestOf(state), [state]);

  const canLeave: Record<Step, boolean> = {
    Migration: !!state.sourceId && !!state.target.project && !!state.target.volumeType,
    VMs: state.vms.length > 0,
    Instance: true,
    Networks: true,
    Options: true,
    Summary: true,
  };
  const go = (s: Step) => {
    setStep(s);
    if (s === 'Summary') void assess();
  };
  const next = () => go(STEPS[STEPS.indexOf(step) + 1]!);
  const back = () => setStep(STEPS[STEPS.indexOf(step) - 1]!);

  async function assess() {
    setReview(undefined);
    setProblem(undefined);
    try {
      setReview(await session.api.post<PreflightAnswer>('/preflight', request));
    } catch (err) {
      setProblem(err);
    }
  }

  async function submit() {
    setSubmitting(true);
    setProblem(undefined);
    try {
      const answer = await session.api.post<{ id?: string; migrations?: Array<{ id?: string; status: number }> }>('/migrations', request, { 'idempotency-key': idempotencyKey });
      location.hash = answer.id ? href('migrations', answer.id) : href('migrations');
    } catch (err) {
      setProblem(err);
    } finally {
      setSubmitting(false);
    }
  }

  const problemSteps = problem instanceof ApiProblem ? [...new Set(problem.errors.map((e) => stepOf(e.field)))] : [];

  return (
    <main>
      <h1>New Migration</h1>
      <ol class="steps" aria-label="Steps">
        {STEPS.map((s, i) => {
          const reachable = STEPS.slice(0, i).every((p) => canLeave[p]);
          return (
            <li key={s} class={`step ${s === step ? 'step-current' : ''} ${problemSteps.includes(s) ? 'step-problem' : ''}`}>
              <button type="button" class="link" disabled={!reachable} aria-current={s === step ? 'step' : undefined} onClick={() => go(s)}>
                {i + 1}. {s}
              </button>
            </li>
          );
        })}
      </ol>

      {step === 'Migration' && (
        <section>
          <fieldset class="fields">
            <legend>Kind</legend>
            <label class="inline">
              <input type="radio" name="kind" value="cold" checked={state.kind === 'cold'} onChange={() => update('kind', 'cold')} /> Cold — the source is powered off and copied once
            </label>
            <label class="inline">
              <input type="radio" name="kind" value="warm" checked={state.kind === 'warm'} onChange={() => update('kind', 'warm')} /> Warm — synced while it runs, then cut over
            </label>
          </fieldset>
          <fieldset class="fields">
            <legend>Source</legend>
            <label>
              Source environment
              <select name="sourceId" value={state.sourceId} onChange={(e) => setState((s) => ({ ...s, sourceId: (e.target as HTMLSelectElement).value, vms: [] }))}>
                {(sources ?? []).map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.id}
                  </option>
                ))}
              </select>
              <FieldErrors reasons={errorsFor('sourceId')} />
            </label>
          </fieldset>
          <TargetFields
            value={state.target}
            onChange={(t) => {
              update('target', t);
              saveAssessmentTarget(t);
            }}
            projects={session.principal.projects}
            targets={targets}
            choices={choices}
            choicesError={choicesError}
            errors={errorsFor}
          />
        </section>
      )}

      {step === 'VMs' && (
        <section>
          <p>
            Pick one or more VMs. Each must pass preflight (Pass or Warn) for {state.target.project}; {state.vms.length} selected.
          </p>
          <FieldErrors reasons={[...errorsFor('vm'), ...errorsFor('vms')]} />
          <InventoryTable
            session={session}
            sourceId={state.sourceId}
            target={state.target}
            kind={state.kind}
            selection={{
              selected: state.vms,
              toggle: (vm: InventoryVm, verdict: Verdict | undefined) =>
                setState((s) => ({ ...s, vms: s.vms.some((v) => v.moref === vm.moref) ? s.vms.filter((v) => v.moref !== vm.moref) : verdict && blocksSelection(verdict) ? s.vms : [...s.vms, vm] })),
            }}
          />
        </section>
      )}

      {step === 'Instance' && (
        <section>
          <fieldset class="fields">
            <legend>Instance</legend>
            {state.vms.length === 1 && (
              <label>
                Instance name <span class="muted">(default: {state.vms[0]!.name})</span>
                <input name="target.instanceName" value={state.instance.instanceName} onInput={(e) => update('instance', { ...state.instance, instanceName: (e.target as HTMLInputElement).value })} aria-invalid={!!errorsFor('target.instanceName').length} />
                <FieldErrors reasons={errorsFor('target.instanceName')} />
              </label>
            )}
            <ChoiceInput
              label="Flavor"
              name="target.flavor"
              value={state.instance.flavor}
              empty="the smallest that fits each VM"
              options={choices?.flavors.map((f) => ({ value: f.name, shown: `${f.name} — ${f.vcpus} vCPU, ${bytes(f.ramMB * 2 ** 20)}${f.diskGB ? `, ${f.diskGB} GB disk` : ''}` }))}
              reasons={errorsFor('target.flavor')}
              onChange={(flavor) => update('instance', { ...state.instance, flavor })}
            />
            <ChoiceInput
              label="Availability zone"
              name="target.availabilityZone"
              value={state.instance.availabilityZone}
              empty="any (the cloud's choice)"
              options={choices?.availabilityZones?.map((z) => ({ value: z }))}
              reasons={errorsFor('target.availabilityZone')}
              onChange={(availabilityZone) => update('instance', { ...state.instance, availabilityZone })}
            />
            <label>
              Disk bus
              <select name="target.diskBus" value={state.instance.diskBus} onChange={(e) => update('instance', { ...state.instance, diskBus: (e.target as HTMLSelectElement).value })}>
                <option value="">as converted (virtio)</option>
                <option value="virtio">VirtIO</option>
                <option value="scsi">SCSI</option>
                <option value="sata">SATA</option>
                <option value="ide">IDE</option>
              </select>
            </label>
            <label>
              Machine type
              <select name="target.machineType" value={state.instance.machineType} onChange={(e) => update('instance', { ...state.instance, machineType: (e.target as HTMLSelectElement).value })}>
                <option value="">the target's default</option>
                <option value="pc-q35">pc-q35</option>
                <option value="pc-i440fx">pc-i440fx</option>
              </select>
            </label>
            <label>
              SSH key pair <span class="muted">(optional)</span>
              <input name="target.keyName" value={state.instance.keyName} onInput={(e) => update('instance', { ...state.instance, keyName: (e.target as HTMLInputElement).value })} />
            </label>
            <label class="inline">
              <input type="checkbox" checked={state.instance.start} onChange={(e) => update('instance', { ...state.instance, start: (e.target as HTMLInputElement).checked })} /> Start the instance when it is created
            </label>
            <label class="inline">
              <input type="checkbox" checked={state.instance.keepOnFailure} onChange={(e) => update('instance', { ...state.instance, keepOnFailure: (e.target as HTMLInputElement).checked })} /> Keep what was made if it fails (a retry reuses verified copies)
            </label>
          </fieldset>
        </section>
      )}

      {step === 'Networks' && (
        <section>
          {state.vms.every((vm) => !vm.nics.length) && <p class="muted">The selected VMs have no NICs.</p>}
          {state.vms.flatMap((vm) =>
            vm.nics.map((nic) => {
              const blank: NetworkChoice = { targetNetwork: '', targetSubnet: '', preserveMac: false, keepIps: false };
              const n = state.networks[nic.macAddress] ?? blank;
              const set = (change: Partial<NetworkChoice>) =>
                setState((s) => {
                  const next = { ...s.networks, [nic.macAddress]: { ...n, ...change } };
                  // A target network given for one NIC is offered to the other NICs on its source network still unmapped.
                  if (change.targetNetwork !== undefined) {
                    for (const other of s.vms.flatMap((v) => v.nics)) {
                      if (other.network === nic.network && other.macAddress !== nic.macAddress && !s.networks[other.macAddress]?.targetNetwork) next[other.macAddress] = { ...blank, ...s.networks[other.macAddress], targetNetwork: change.targetNetwork };
                    }
                  }
                  return { ...s, networks: next };
                });
              return (
                <fieldset class="fields" key={nic.macAddress} data-vm={vm.name} data-source-network={nic.network}>
                  <legend>
                    {vm.name} · {nic.label} <span class="muted">({nic.macAddress}, on {nic.network})</span>
                  </legend>
                  <ChoiceInput
                    label="Target network"
                    name={`network.${nic.macAddress}`}
                    value={n.targetNetwork}
                    options={choices?.networks?.map((x) => ({ value: x.name, shown: x.external ? `${x.name} (external)` : x.name }))}
                    onChange={(targetNetwork) => set({ targetNetwork, targetSubnet: '' })}
                  />
                  <ChoiceInput
                    label="Subnet"
                    name={`subnet.${nic.macAddress}`}
                    value={n.targetSubnet}
                    empty="any of the network's (optional)"
                    options={choices?.networks ? (choices.networks.find((x) => x.name === n.targetNetwork)?.subnets ?? []).map((x) => ({ value: x.name, shown: x.cidr ? `${x.name} (${String(x.cidr)})` : x.name })) : undefined}
                    onChange={(targetSubnet) => set({ targetSubnet })}
                  />
                  <label class="inline">
                    <input type="checkbox" checked={n.preserveMac} onChange={(e) => set({ preserveMac: (e.target as HTMLInputElement).checked })} /> Keep the MAC address
                  </label>
                  <label class="inline">
                    <input type="checkbox" checked={n.keepIps} onChange={(e) => set({ keepIps: (e.target as HTMLInputElement).checked })} /> Keep the IP addresses VMware Tools report ({nic.ipAddresses.join(', ') || 'none reported'})
                  </label>
                </fieldset>
              );
            }),
          )}
          <FieldErrors reasons={errorsFor('target.networks')} />
        </section>
      )}

      {step === 'Options' && (
        <section>
          <fieldset class="fields">
            <legend>Replication</legend>
            <label class="inline">
              <input type="checkbox" checked={state.options.startReplication} onChange={(e) => update('options', { ...state.options, startReplication: (e.target as HTMLInputElement).checked })} /> Start replication immediately
            </label>
            {state.kind === 'cold' ? (
              <>
                <label class="inline">
                  <input type="checkbox" checked={state.options.cleanShutdown} onChange={(e) => update('options', { ...state.options, cleanShutdown: (e.target as HTMLInputElement).checked })} /> Shut the guest down cleanly (instead of powering it off)
                </label>
                {state.options.cleanShutdown && (
                  <label>
                    Shutdown timeout (seconds)
                    <input name="cold.shutdownTimeoutSeconds" inputMode="numeric" value={state.options.shutdownTimeoutSeconds} onInput={(e) => update('options', { ...state.options, shutdownTimeoutSeconds: (e.target as HTMLInputElement).value })} />
                    <FieldErrors reasons={errorsFor('cold.shutdownTimeoutSeconds')} />
                  </label>
                )}
              </>
            ) : (
              <>
                <label>
                  Sync interval (seconds)
                  <input name="warm.syncIntervalSeconds" inputMode="numeric" placeholder="3600" value={state.options.syncIntervalSeconds} onInput={(e) => update('options', { ...state.options, syncIntervalSeconds: (e.target as HTMLInputElement).value })} />
                  <FieldErrors reasons={errorsFor('warm.syncIntervalSeconds')} />
                </label>
                <label class="inline">
                  <input type="checkbox" checked={state.options.warmShutdownSource} onChange={(e) => update('options', { ...state.options, warmShutdownSource: (e.target as HTMLInputElement).checked })} /> Shut down the source at cutover
                </label>
                <label class="inline">
                  <input type="checkbox" checked={state.options.startTarget} onChange={(e) => update('options', { ...state.options, startTarget: (e.target as HTMLInputElement).checked })} /> Start the target after deployment
                </label>
                <label class="inline">
                  <input type="checkbox" checked={state.options.autoDeploy} onChange={(e) => update('options', { ...state.options, autoDeploy: (e.target as HTMLInputElement).checked })} /> Auto-deploy: cut over as soon as the full sync is done
                </label>
                <label>
                  Scheduled cutover <span class="muted">(optional)</span>
                  <input type="datetime-local" name="warm.cutoverAt" value={state.options.cutoverAt} onInput={(e) => update('options', { ...state.options, cutoverAt: (e.target as HTMLInputElement).value })} />
                  <FieldErrors reasons={[...errorsFor('warm.cutoverAt'), ...errorsFor('warm.autoDeploy')]} />
                </label>
              </>
            )}
          </fieldset>
          <fieldset class="fields">
            <legend>Guest</legend>
            <label>
              OS conversion
              <select value={state.options.convert} onChange={(e) => update('options', { ...state.options, convert: (e.target as HTMLSelectElement).value as WizardState['options']['convert'] })}>
                <option value="auto">automatic (when the guest needs it)</option>
                <option value="force">always</option>
                <option value="skip">skip (KVM to KVM)</option>
              </select>
            </label>
            <label class="inline">
              <input type="checkbox" checked={state.options.bootCheck} onChange={(e) => update('options', { ...state.options, bootCheck: (e.target as HTMLInputElement).checked })} /> Boot check after conversion
            </label>
          </fieldset>
        </section>
      )}

      {step === 'Summary' && (
        <section aria-labelledby="summary-h">
          <h2 id="summary-h">Summary</h2>
          {!review && !problem && <p aria-busy="true">Asking preflight…</p>}
          {review && (
            <>
              <dl class="facts">
                <dt>Kind</dt>
                <dd>{state.kind}</dd>
                <dt>Source</dt>
                <dd>{state.sourceId}</dd>
                <dt>Target</dt>
                <dd>
                  {state.target.name || 'default target'}, project {state.target.project}, volume type {state.target.volumeType}
                </dd>
                <dt>Estimated runtime</dt>
                <dd class="estimate">{review.estimate.basis === 'measured' ? `${duration(review.estimate.seconds)} (from ${review.estimate.migrations} measured migrations at ${bytes(review.estimate.bytesPerSecond)}/s)` : `no estimate yet: ${review.estimate.reason}`}</dd>
              </dl>
              <table class="list">
                <ColumnHeads names={['VM', 'Verdict', 'Instance', 'Flavor', 'Volumes', 'Networks']} />
                <tbody>
                  {state.vms.map((vm) => {
                    const v = review.verdicts.find((x) => x.vm.moref === vm.moref);
                    return (
                      <tr key={vm.moref} data-vm={vm.name}>
                        <td data-label="VM">{vm.name}</td>
                        <td data-label="Verdict">
                          <VerdictBadge verdict={v} />
                        </td>
                        <td data-label="Instance">{(state.vms.length === 1 && state.instance.instanceName) || vm.name}</td>
                        <td data-label="Flavor">{v?.flavor ?? (state.instance.flavor || '—')}</td>
                        <td data-label="Volumes">
                          {vm.disks.length} × {state.target.volumeType}, {bytes(vm.disks.reduce((s, d) => s + d.capacityBytes, 0))}
                          {v?.bytesToCopy !== undefined && <span class="muted"> ({bytes(v.bytesToCopy)} to copy)</span>}
                        </td>
                        <td data-label="Networks">{vm.nics.map((n) => `${n.network} → ${state.networks[n.macAddress]?.targetNetwork || 'unmapped'}`).join(', ') || '—'}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </>
          )}
          <div class="actions">
            <button type="button" onClick={submit} disabled={submitting || !review || review.verdicts.some((v) => v.verdict === 'Fail')}>
              {submitting ? 'Submitting…' : 'Submit'}
            </button>
          </div>
        </section>
      )}

      <ProblemNotice error={problem} what={step === 'Summary' ? 'Submission' : undefined} />
      {problemSteps.length > 0 && (
        <p>
          Fix in:{' '}
          {problemSteps.map((s) => (
            <button key={s} type="button" class="link" onClick={() => setStep(s)}>
              {s}
            </button>
          ))}
        </p>
      )}

      {step !== 'Summary' && (
        <div class="actions">
          {step !== 'Migration' && (
            <button type="button" class="secondary" onClick={back}>
              Back
            </button>
          )}
          <button type="button" onClick={next} disabled={!canLeave[step]}>
            Next
          </button>
        </div>
      )}
      {step === 'Summary' && (
        <div class="actions">
          <button type="button" class="secondary" onClick={back}>
            Back
          </button>
        </div>
      )}
    </main>
  );
}
