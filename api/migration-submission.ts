import { createHash, randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Principal } from '../identity/identity-provider';
import type { ExportDiskInput, ExportDiskProgress, ExportDiskResult, GuestFixReport, SyncDiskInput, SyncDiskResult } from '../activities';
import type { ColdMigrationInput, RetryOfMigration, WarmMigrationInput } from '../shared/migration-input';
import type { AdmissionLimits } from '../workflows/admission-ledger';
import {
  admissionWorkflowId,
  admitUpdate,
  type AdmissionCandidate,
  type AdmissionOutcome,
  type AdmissionRequest,
  type AdmissionResult,
} from '../workflows/admission-messages';
import type { CreateMigrationRequest } from './migration-request';
import { preflightRefusal, type EstimatedAnswer } from './preflight-route';
import { HttpProblem } from './problem';
import type { WorkflowRecord } from './workflow-history';

/**
 * POST /migrations, after validation and scoping: one candidate migration per VM, handed to the admission workflow
 * as one `admit` Update (started with the workflow if it is not running yet). Admission decides; this turns its
 * outcomes into the HTTP answer.
 */

/** How long a submission waits for admission before answering 503 (no worker running?). */
const ADMISSION_TIMEOUT_MS = 30_000;

export interface SubmissionDeps {
  client: Client;
  taskQueue: string;
  limits: AdmissionLimits;
  defaultTarget: string;
}

export interface SubmissionAnswer {
  status: number;
  body: unknown;
  replayed: boolean;
  location?: string;
}

/** The hash an Idempotency-Key is bound to: the validated request, so formatting differences do not matter. */
export function requestHash(body: CreateMigrationRequest): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

const links = (id: string, kind: string) => ({
  self: `/migrations/${id}`,
  events: `/migrations/${id}/events`,
  cancel: `/migrations/${id}/cancel`,
  ...(kind === 'warm' ? { cutover: `/migrations/${id}/cutover` } : {}),
});

function problemOf(o: Extract<AdmissionOutcome, { outcome: 'refused' }>): HttpProblem {
  switch (o.conflict) {
    case 'vm':
      return new HttpProblem('conflict', o.reason, { migration: o.holder });
    case 'quota':
      return new HttpProblem('conflict', o.reason);
    case 'not-found':
      return new HttpProblem('not-found', o.reason);
    case 'source':
      return new HttpProblem('service-unavailable', `the source could not be asked about the VM: ${o.reason}`, {}, { 'Retry-After': '10' });
  }
}

/** Auto-deploy is a cutover due as soon as the full sync is done: a cutover scheduled for the submission time. */
function warmOptionsOf(warm: CreateMigrationRequest['warm']): WarmMigrationInput['warm'] {
  if (!warm?.autoDeploy) return warm ?? {};
  const { autoDeploy: _auto, ...rest } = warm;
  return { ...rest, cutoverAt: new Date().toISOString() };
}

export async function submitMigrations(
  deps: SubmissionDeps,
  principal: Principal,
  body: CreateMigrationRequest,
  idempotencyKey: string | undefined,
  preflight: EstimatedAnswer,
): Promise<SubmissionAnswer> {
  const vms = body.vms ?? [body.vm!];
  const target = { ...body.target, name: body.target.name ?? deps.defaultTarget };
  const verdictOf = (i: number) => preflight.verdicts[i];
  if (!body.vms && verdictOf(0).verdict === 'Fail') throw preflightRefusal(verdictOf(0));
  const passing = vms.map((vm, i) => ({ vm, i })).filter(({ i }) => verdictOf(i).verdict !== 'Fail');
  if (!passing.length) throw preflightRefusal(verdictOf(0));
  const migrations: AdmissionCandidate[] = passing.map(({ vm, i }) => {
    const migrationId = `mig-${randomUUID().slice(0, 13)}`;
    const v = verdictOf(i);
    const input: ColdMigrationInput = {
      migrationId,
      sourceId: body.sourceId,
      vm,
      // The mappings as preflight resolved them for this VM (addresses kept with keepIps).
      target: { ...target, networks: v.networks ?? target.networks },
      ...(body.guest ? { guest: body.guest } : {}),
      ...(body.cold ? { cold: body.cold } : {}),
      ...(body.startReplication === false ? { startReplication: false } : {}),
      preflight: { verdict: v.verdict as 'Pass' | 'Warn', reasons: v.reasons, assessedAt: preflight.assessedAt, ...(v.flavor ? { flavor: v.flavor } : {}), estimate: v.estimate },
    };
    return { migrationId, kind: body.kind, input: body.kind === 'warm' ? ({ ...input, warm: warmOptionsOf(body.warm) } satisfies WarmMigrationInput) : input };
  });
  const request: AdmissionRequest = {
    actor: principal.user,
    limits: deps.limits,
    migrations,
    ...(idempotencyKey ? { idempotency: { key: `${principal.via}:${principal.userId ?? principal.user}:${idempotencyKey}`, requestHash: requestHash(body) } } : {}),
  };
  const result = await admit(deps, request);
  const admittedItems = result.outcomes.map((o) =>
    o.outcome === 'admitted'
      ? { status: 202, vm: o.vm, id: o.migrationId, stage: 'Queued', kind: body.kind, sourceVm: o.sourceVm, ...(o.position ? { queuePosition: o.position } : {}), links: links(o.migrationId, body.kind) }
      : { status: problemOf(o).status, vm: o.vm, problem: problemOf(o).body() },
  );
  // Every VM in the order asked: the admitted and refused ones, and those preflight failed.
  const items = vms.map((vm, i) => {
    const at = passing.findIndex((p) => p.i === i);
    if (at >= 0) return admittedItems[at];
    const refusal = preflightRefusal(verdictOf(i));
    return { status: refusal.status, vm, problem: refusal.body() };
  });
  if (!body.vms) {
    const only = result.outcomes[0];
    if (only.outcome === 'refused') throw problemOf(only);
    const { status: _s, vm: _vm, ...one } = admittedItems[0] as Extract<(typeof admittedItems)[number], { id: string }>;
    return { status: 202, body: one, replayed: result.replayed, location: `/migrations/${one.id}` };
  }
  // Several VMs: 202 when any was admitted, each with its own outcome; otherwise the first refusal.
  const first = result.outcomes.find((o) => o.outcome === 'admitted');
  if (!first) throw problemOf(result.outcomes[0] as Extract<AdmissionOutcome, { outcome: 'refused' }>);
  return { status: 202, body: { migrations: items }, replayed: result.replayed };
}

/**
 * POST /migrations/:id/retry: the same migration id again, through admission (the VM must be free), with what the
 * ended run left durable in the volumes it kept. Cold: verified copies are reused, partial copies resume. Warm: each
 * disk whose last sync completed starts from that sync's change id, so the first sync copies only what changed since.
 */
export async function retryMigration(deps: SubmissionDeps, principal: Principal, rec: WorkflowRecord): Promise<SubmissionAnswer> {
  const warm = rec.workflowType === 'warmMigration';
  const previous = rec.input as WarmMigrationInput;
  // A retry starts at once, even of a migration that was created to be started later.
  const { admission: _admission, retry: _retry, startReplication: _later, ...input } = previous;
  // What the ended run kept: without it every disk is copied anew (there is nothing to pick up).
  const kept = previous.target.keepOnFailure || (warm && rec.status === 'CANCELLED' && !previous.warm?.deleteVolumesOnCancel);
  const disks: RetryOfMigration['disks'] = kept ? (warm ? warmDisksToPickUp(rec) : coldDisksToPickUp(rec)) : {};
  const retry: RetryOfMigration = { by: principal.user, at: new Date().toISOString(), previousRunId: rec.runId, disks };
  const kind = warm ? 'warm' : 'cold';
  const result = await admit(deps, { actor: principal.user, limits: deps.limits, migrations: [{ migrationId: rec.workflowId, kind, input: { ...input, retry } }] });
  const only = result.outcomes[0];
  if (only.outcome === 'refused') throw problemOf(only);
  const entries = Object.values(disks);
  return {
    status: 202,
    body: {
      id: rec.workflowId,
      stage: 'Queued',
      kind,
      retry: { previousRunId: rec.runId, reusedDisks: entries.filter((d) => d.copied || d.changeId).length, resumedDisks: entries.filter((d) => d.resumeFrom).length },
      links: links(rec.workflowId, kind),
    },
    replayed: false,
    location: `/migrations/${rec.workflowId}`,
  };
}

/**
 * Volumes the ended run booted are no longer what was copied: when the instance ran on the copied volumes themselves
 * (no conversion, so no clones), nothing is picked up.
 */
function bootedCopiedVolumes(rec: WorkflowRecord): boolean {
  const booted = rec.activities.some((a) => (a.type === 'bootCheck' || a.type === 'startInstance') && a.startedAt !== undefined);
  const converted = rec.activities.some((a) => a.type === 'guestFix' && a.outcome === 'completed' && (a.result as GuestFixReport).converted);
  return booted && !converted;
}

function coldDisksToPickUp(rec: WorkflowRecord): RetryOfMigration['disks'] {
  if (bootedCopiedVolumes(rec)) return {};
  const copies = rec.activities.filter((x) => x.type === 'exportDisk');
  if (!copies.length) return {};
  // From when the earlier run began copying: a power-on of the source after that voids what it copied.
  const since = new Date(Math.min(...copies.map((a) => a.scheduledAt))).toISOString();
  const disks: RetryOfMigration['disks'] = {};
  for (const a of copies) {
    const key = String((a.input as ExportDiskInput).diskKey);
    if (a.outcome === 'completed') {
      const r = a.result as ExportDiskResult;
      if (r.verification?.match !== false) disks[key] = { copied: r, since };
    } else if (!disks[key]?.copied) {
      const p = a.endDetails as ExportDiskProgress | undefined;
      if (p?.volumeId && p.bytesDone > (disks[key]?.resumeFrom ?? 0)) disks[key] = { resumeFrom: p.bytesDone, volumeId: p.volumeId, since };
    }
  }
  return disks;
}

/** A disk counts only if its last sync completed: one abandoned part-way left the volume between two change ids. */
function warmDisksToPickUp(rec: WorkflowRecord): RetryOfMigration['disks'] {
  if (bootedCopiedVolumes(rec)) return {};
  const last = new Map<string, WorkflowRecord['activities'][number]>();
  for (const a of rec.activities.filter((x) => x.type === 'syncDisk')) last.set(String((a.input as SyncDiskInput).diskKey), a);
  const disks: RetryOfMigration['disks'] = {};
  for (const [key, a] of last) {
    if (a.outcome !== 'completed') continue;
    const r = a.result as SyncDiskResult;
    if (r.changeId) disks[key] = { changeId: r.changeId, volumeId: r.volume.id };
  }
  return disks;
}

/** The admission workflow's answer to a request (started if it is not running yet); 503 if no worker answers. */
export async function admit(deps: Pick<SubmissionDeps, 'client' | 'taskQueue'>, request: AdmissionRequest): Promise<AdmissionResult> {
  const start = new WithStartWorkflowOperation('admission', {
    workflowId: admissionWorkflowId(deps.taskQueue),
    taskQueue: deps.taskQueue,
    args: [],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: 'Admission: one live migration per source VM, quotas, and disk-copy slots per source host and datastore',
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpProblem('service-unavailable', `admission did not answer within ${ADMISSION_TIMEOUT_MS / 1000} s; is a vmigrate worker running on task queue ${deps.taskQueue}? Retry with the same Idempotency-Key to be safe`, {}, { 'Retry-After': '10' })),
      ADMISSION_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([deps.client.workflow.executeUpdateWithStart(admitUpdate, { args: [request], startWorkflowOperation: start }), timeout]);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const cause = err.cause as { type?: string; message?: string } | undefined;
      if (cause?.type === 'IdempotencyKeyReused') throw new HttpProblem('unprocessable-request', cause.message);
      throw new HttpProblem('unprocessable-request', `admission refused the request: ${cause?.message ?? err.message}`);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
