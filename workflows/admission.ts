import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { VmigrateActivities } from '../activities';
import { MigrationKind, MigrationState, ProjectId, SourceVm } from '../shared/search-attributes';
import { NON_RETRYABLE, rootCauseMessage, rootCauseType } from './activity-proxies';
import {
  addClaim,
  agentMachineClaim,
  claimOf,
  grantSlots,
  markStarted,
  releaseHold,
  queuePlaces,
  refusal,
  releaseClaim,
  releaseCopies,
  vmKey,
  type AdmissionLimits,
  type ClaimedVm,
  type LedgerState,
} from './admission-ledger';
import {
  admissionQueueQuery,
  admitUpdate,
  copiesDoneSignal,
  copySlotsGrantedSignal,
  migrationEndedSignal,
  replicationStartedSignal,
  type AdmissionCandidate,
  type AdmissionOutcome,
  type AdmissionRequest,
  type AdmissionResult,
} from './admission-messages';

/**
 * Admission: the one place that decides whether a migration may start, as an entity workflow (one per deployment)
 * in the manner of samples-typescript's safe-message-handlers. Submissions arrive as the `admit` Update; the rules
 * live in admission-ledger.ts. Workflow code runs one handler step at a time, so the check that a VM is free and
 * the claim of it happen with no other submission in between: two identical requests at the same instant start
 * exactly one migration. Migrations it starts are its children (abandoned on close, so they outlive its runs);
 * they tell it when their copies are done and when they end, and it tells them when they may leave Queued.
 */

/** How long an Idempotency-Key is remembered, and how many are kept at most (they travel in continue-as-new). */
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
const IDEMPOTENCY_MAX_KEYS = 1000;
/** How often live claims are checked against Temporal (a migration terminated from outside cannot say it ended). */
const SWEEP_INTERVAL_MS = 5 * 60 * 1000;
/** Continue as new past this history length even if the server has not suggested it yet. */
const MAX_HISTORY_EVENTS = 10_000;

export interface AdmissionWorkflowState {
  ledger: LedgerState;
  limits: AdmissionLimits;
  idempotency: Array<{ key: string; requestHash: string; at: number; result: AdmissionResult }>;
  /** Grants decided but not yet delivered to their migrations (carried across continue-as-new). */
  outbox: Array<{ migrationId: string; copySlots: number; runId?: string }>;
  /** When live claims are next checked against Temporal (workflow time, ms). */
  nextSweepAt?: number;
}

const activities = proxyActivities<VmigrateActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
});

export interface AdmissionTuning {
  /** Continue as new past this many history events (default 10,000; tests lower it to see the hand-over). */
  maxHistoryEvents?: number;
}

const workflowTypeOf = (kind: AdmissionCandidate['kind']) => ({ cold: 'coldMigration', warm: 'warmMigration', agent: 'agentMigration' })[kind];

export async function admission(carried?: AdmissionWorkflowState, tuning: AdmissionTuning = {}): Promise<void> {
  const state: AdmissionWorkflowState = carried ?? { ledger: { claims: [] }, limits: {}, idempotency: [], outbox: [] };
  /** Requests of this run still being admitted, by idempotency key: a concurrent retry waits for the first. */
  const inFlight = new Map<string, { requestHash: string; done: Promise<AdmissionResult> }>();
  let sweepDue = false;

  const regrant = () => {
    for (const g of grantSlots(state.ledger, state.limits)) state.outbox.push({ ...g, runId: claimOf(state.ledger, g.migrationId)?.runId });
  };
  /** The migration's VM, slots and any undelivered grant go back. */
  const release = (migrationId: string) => {
    releaseClaim(state.ledger, migrationId);
    state.outbox = state.outbox.filter((g) => g.migrationId !== migrationId);
    regrant();
  };
  /** Claims that have not ended, as far as Temporal knows (a migration terminated from outside never says it ended). */
  async function releaseEnded(claims: Array<{ migrationId: string; runId?: string }>): Promise<void> {
    // A claim still starting has no run to ask about yet: asking by id alone could find an older, closed run.
    const started = claims.filter((c): c is { migrationId: string; runId: string } => !!c.runId);
    for (let i = 0; i < started.length; i += 100) {
      const batch = started.slice(i, i + 100);
      const ended = await activities.endedMigrations({ migrations: batch.map((c) => ({ id: c.migrationId, runId: c.runId })) }).catch(() => [] as string[]);
      // Released only if the claim is still that run's (a retry may have claimed the id again meanwhile).
      for (const c of batch) if (ended.includes(c.migrationId) && claimOf(state.ledger, c.migrationId)?.runId === c.runId) release(c.migrationId);
    }
  }

  setHandler(admissionQueueQuery, () => ({
    live: state.ledger.claims.length,
    queue: queuePlaces(state.ledger, state.limits),
    running: state.ledger.claims
      .filter((c) => c.state === 'running')
      .map((c) => ({ migrationId: c.migrationId, copySlots: c.copySlots, project: c.project, sourceVm: vmKey(c.vm) })),
  }));

  setHandler(copiesDoneSignal, ({ migrationId }) => {
    releaseCopies(state.ledger, migrationId);
    regrant();
  });
  setHandler(migrationEndedSignal, ({ migrationId }) => release(migrationId));
  setHandler(replicationStartedSignal, ({ migrationId }) => {
    if (releaseHold(state.ledger, migrationId, Date.now())) regrant();
  });

  setHandler(
    admitUpdate,
    async (req) => {
      state.limits = req.limits;
      state.idempotency = state.idempotency.filter((k) => Date.now() - k.at < IDEMPOTENCY_TTL_MS);
      const key = req.idempotency;
      if (key) {
        const prior = state.idempotency.find((k) => k.key === key.key);
        if (prior) return { ...prior.result, replayed: true };
        const running = inFlight.get(key.key);
        if (running) return { ...(await running.done), replayed: true };
      }
      const done = admitAll(req);
      if (key) inFlight.set(key.key, { requestHash: key.requestHash, done });
      try {
        const result = await done;
        // A source that could not be asked is worth asking again: such an answer is not remembered for the key.
        if (key && !result.outcomes.some((o) => o.outcome === 'refused' && o.conflict === 'source')) {
          state.idempotency.push({ key: key.key, requestHash: key.requestHash, at: Date.now(), result });
          if (state.idempotency.length > IDEMPOTENCY_MAX_KEYS) state.idempotency.splice(0, state.idempotency.length - IDEMPOTENCY_MAX_KEYS);
        }
        return result;
      } finally {
        if (key) inFlight.delete(key.key);
      }
    },
    {
      validator: (req) => {
        if (!req || !Array.isArray(req.migrations) || req.migrations.length === 0) throw new Error('nothing to admit');
        if (req.migrations.length > 100) throw new Error('at most 100 VMs in one submission');
        const key = req.idempotency;
        if (!key) return;
        const earlier = state.idempotency.find((k) => k.key === key.key) ?? inFlight.get(key.key);
        if (earlier && earlier.requestHash !== key.requestHash) {
          throw ApplicationFailure.create({
            type: 'IdempotencyKeyReused',
            message: 'this Idempotency-Key was already used with a different request body; use a new key for a new request',
            nonRetryable: true,
          });
        }
      },
    },
  );

  async function admitAll(req: AdmissionRequest): Promise<AdmissionResult> {
    const outcomes: AdmissionOutcome[] = [];
    // One after the other, in the order given: each sees the claims of the ones before it.
    for (const candidate of req.migrations) outcomes.push(await admitOne(req, candidate));
    return { replayed: false, outcomes };
  }

  async function admitOne(req: AdmissionRequest, candidate: AdmissionCandidate): Promise<AdmissionOutcome> {
    const { input } = candidate;
    // An agent's machine is known from what its agent reported; a source VM is looked up in its source. (Only new
    // requests carry agent candidates, so recorded histories never take that branch.)
    const subject = candidate.kind === 'agent' ? { moref: candidate.input.machineId, name: candidate.input.machine.guest.name } : candidate.input.vm;
    let vm: ClaimedVm;
    if (candidate.kind === 'agent') {
      vm = agentMachineClaim(candidate.input);
    } else {
      try {
        vm = await activities.resolveSourceVm({ sourceId: candidate.input.sourceId, vm: candidate.input.vm });
      } catch (err) {
        const notFound = rootCauseType(err) === 'VmNotFound';
        return { vm: subject, outcome: 'refused', conflict: notFound ? 'not-found' : 'source', reason: rootCauseMessage(err) };
      }
    }
    let why = refusal(state.ledger, state.limits, input.target.project, vm);
    const holder = why?.holder ? claimOf(state.ledger, why.holder) : undefined;
    if (holder?.runId) {
      // The holder may have been terminated without a word: ask Temporal before refusing on its account.
      await releaseEnded([holder]);
      why = refusal(state.ledger, state.limits, input.target.project, vm);
    }
    // From here to the claim nothing awaits: no other submission can slip in between the check and the claim.
    if (why) return { vm: subject, outcome: 'refused', conflict: why.conflict, reason: why.reason, holder: why.holder };
    addClaim(state.ledger, {
      migrationId: candidate.migrationId,
      project: input.target.project,
      vm,
      submittedAt: Date.now(),
      submittedBy: req.actor,
      // Created to be started later: it keeps its VM, and waits outside the line until it is started.
      ...((candidate.kind === 'agent' ? !candidate.input.autoStart : candidate.input.startReplication === false) ? { held: true } : {}),
    });
    const sourceVm = vmKey(vm);
    let runId: string;
    try {
      const admission = { workflowId: workflowInfo().workflowId };
      const child = await startChild(workflowTypeOf(candidate.kind), {
        workflowId: candidate.migrationId,
        // A retry keeps its original submitter (the retry itself names who asked for it).
        args: [
          candidate.kind === 'agent'
            ? { ...candidate.input, admission }
            : { ...candidate.input, vm: { moref: vm.moref, name: vm.name }, submittedBy: candidate.input.submittedBy ?? req.actor, admission },
        ],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: MigrationState, value: 'Queued' },
          { key: MigrationKind, value: candidate.kind },
          { key: ProjectId, value: input.target.project },
          { key: SourceVm, value: sourceVm },
        ],
      });
      runId = child.firstExecutionRunId;
    } catch (err) {
      release(candidate.migrationId);
      return { vm: subject, outcome: 'refused', conflict: 'source', reason: `could not start the migration: ${rootCauseMessage(err)}` };
    }
    // Only now can a grant reach it (another handler may regrant while the start is under way).
    markStarted(state.ledger, candidate.migrationId, runId);
    regrant();
    const place = queuePlaces(state.ledger, state.limits).find((p) => p.migrationId === candidate.migrationId);
    return { vm: subject, outcome: 'admitted', migrationId: candidate.migrationId, sourceVm, ...(place ? { position: place.position } : {}) };
  }

  for (;;) {
    const tooLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (tuning.maxHistoryEvents ?? MAX_HISTORY_EVENTS);
    const wake = () => state.outbox.length > 0 || sweepDue || tooLong();
    if (state.ledger.claims.length) {
      // A fixed schedule, not a delay from the last wake: a steady stream of grants must not put the sweep off.
      state.nextSweepAt ??= Date.now() + SWEEP_INTERVAL_MS;
      if (!(await condition(wake, Math.max(1, state.nextSweepAt - Date.now())))) sweepDue = true;
    } else {
      state.nextSweepAt = undefined;
      await condition(wake);
    }
    while (state.outbox.length) {
      const grant = state.outbox.shift()!;
      const claim = claimOf(state.ledger, grant.migrationId);
      if (!claim || claim.runId !== grant.runId) continue; // released, or claimed again by a later run meanwhile
      try {
        await getExternalWorkflowHandle(grant.migrationId, grant.runId).signal(copySlotsGrantedSignal, { copySlots: grant.copySlots });
      } catch {
        // Gone before it could start (terminated): free what it was granted.
        if (claimOf(state.ledger, grant.migrationId)?.runId === grant.runId) release(grant.migrationId);
      }
    }
    if (sweepDue) {
      sweepDue = false;
      state.nextSweepAt = Date.now() + SWEEP_INTERVAL_MS;
      await releaseEnded(state.ledger.claims.filter((c) => c.state !== 'starting'));
    }
    if (tooLong()) {
      // Grants keep going out while handlers finish; the hand-over happens at a moment with none in flight.
      await condition(() => allHandlersFinished() || state.outbox.length > 0);
      if (allHandlersFinished() && !state.outbox.length) await continueAsNew<typeof admission>(state, tuning);
    }
  }
}
