import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { fromPayloadsAtIndex, tsToMs, type PayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/**
 * A migration's record, read from Temporal itself: the workflow's event history (what happened, durably) and its
 * pending activities (what is happening now, with the latest heartbeat). Nothing here needs a worker to be running.
 */

export interface ActivityRecord {
  type: string;
  activityId: string;
  scheduledEventId: number;
  scheduledAt: number;
  input: unknown;
  /** Time the (last) attempt started; from history once it ended, from the pending-activity view while it runs. */
  startedAt?: number;
  attempt?: number;
  endedAt?: number;
  outcome?: 'completed' | 'failed' | 'timedOut' | 'canceled';
  result?: unknown;
  failure?: string;
  /** Details an attempt that did not complete left behind (failure details, or the last heartbeat on a timeout). */
  endDetails?: unknown;
  /** Present while the activity is still pending. `state`: SCHEDULED, STARTED or CANCEL_REQUESTED. */
  pending?: { state: string; heartbeat?: unknown; lastHeartbeatAt?: number; lastFailure?: string };
}

export interface WorkflowRecord {
  workflowId: string;
  runId: string;
  workflowType: string;
  status: string;
  startedAt: number;
  closedAt?: number;
  input: unknown;
  result?: unknown;
  failure?: string;
  searchAttributes: Record<string, unknown>;
  activities: ActivityRecord[];
  /** Signals received and Updates accepted, in order (e.g. a warm migration's cutover, and who sent it). */
  messages: MessageRecord[];
  /** Child workflows it started (a host drain's live migrations), in order. */
  children: ChildRecord[];
  /** When a cancel of the workflow was requested. */
  cancelRequestedAt?: number;
}

export interface ChildRecord {
  workflowId: string;
  workflowType: string;
  initiatedAt: number;
  startedAt?: number;
  endedAt?: number;
  outcome?: 'completed' | 'failed' | 'canceled' | 'terminated' | 'timedOut' | 'notStarted';
  result?: unknown;
  failure?: string;
}

export interface MessageRecord {
  kind: 'signal' | 'update';
  name: string;
  time: number;
  input: unknown;
  /** The sender's client identity as the server recorded it (e.g. the Web UI's). */
  identity?: string;
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

function ms(ts: HistoryEvent['eventTime']): number {
  return tsToMs(ts);
}

function failureMessage(f: temporal.api.failure.v1.IFailure | null | undefined): string | undefined {
  let cur = f;
  let msg = cur?.message ?? undefined;
  while (cur?.cause) {
    cur = cur.cause;
    if (cur.message) msg = cur.message;
  }
  return msg;
}

/** Runs of one migration that are read back through continue-as-new (a warm migration's days of syncs). */
const MAX_RUNS_READ = 50;

export async function readWorkflowRecord(client: Client, workflowId: string): Promise<WorkflowRecord> {
  const handle = client.workflow.getHandle(workflowId);
  // describe() first: it turns an unknown id into WorkflowNotFoundError, where fetchHistory() throws a bare gRPC error.
  const description = await handle.describe();
  // The latest run's history, then each earlier run it continued from, so events cover the whole migration.
  const runs: HistoryEvent[][] = [];
  let runId: string | undefined = description.runId;
  while (runId && runs.length < MAX_RUNS_READ) {
    const events: HistoryEvent[] = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    runs.unshift(events);
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  const converter = client.workflow.options.loadedDataConverter.payloadConverter;
  return buildRecord(description, runs, converter);
}

/** `runs`: the histories of the runs, oldest first (one for a workflow that never continued as new). */
export function buildRecord(description: WorkflowExecutionDescription, runs: HistoryEvent[][], converter: PayloadConverter): WorkflowRecord {
  const decode = (p: temporal.api.common.v1.IPayloads | null | undefined) => fromPayloadsAtIndex(converter, 0, p?.payloads ?? []);
  const decodeOptional = (p: temporal.api.common.v1.IPayloads | null | undefined) => (p?.payloads?.length ? decode(p) : undefined);
  const bySchedule = new Map<number, ActivityRecord>();
  const record: WorkflowRecord = {
    workflowId: description.workflowId,
    runId: description.runId,
    workflowType: description.type,
    status: description.status.name,
    startedAt: description.startTime.getTime(),
    closedAt: description.closeTime?.getTime(),
    input: undefined,
    searchAttributes: Object.fromEntries(description.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value])),
    activities: [],
    messages: [],
    children: [],
  };
  const byInitiated = new Map<number, ChildRecord>();
  const child = (initiatedEventId: unknown, run: number) => byInitiated.get(run * 1e9 + Number(initiatedEventId));
  for (const [run, ev] of runs.flatMap((events, i) => events.map((e) => [i, e] as const))) {
    // Event ids restart in every run; scheduled-event ids are only unique within one.
    const id = run * 1e9 + Number(ev.eventId);
    const key = (scheduledEventId: unknown) => run * 1e9 + Number(scheduledEventId);
    if (ev.workflowExecutionStartedEventAttributes) {
      record.input ??= decode(ev.workflowExecutionStartedEventAttributes.input);
    } else if (ev.activityTaskScheduledEventAttributes) {
      const a = ev.activityTaskScheduledEventAttributes;
      const rec: ActivityRecord = { type: a.activityType?.name ?? '?', activityId: a.activityId ?? '', scheduledEventId: id, scheduledAt: ms(ev.eventTime), input: decode(a.input) };
      bySchedule.set(id, rec);
      record.activities.push(rec);
    } else if (ev.activityTaskStartedEventAttributes) {
      const rec = bySchedule.get(key(ev.activityTaskStartedEventAttributes.scheduledEventId));
      if (rec) Object.assign(rec, { startedAt: ms(ev.eventTime), attempt: ev.activityTaskStartedEventAttributes.attempt ?? undefined });
    } else if (ev.activityTaskCompletedEventAttributes) {
      const a = ev.activityTaskCompletedEventAttributes;
      const rec = bySchedule.get(key(a.scheduledEventId));
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'completed', result: decode(a.result) });
    } else if (ev.activityTaskFailedEventAttributes) {
      const a = ev.activityTaskFailedEventAttributes;
      const rec = bySchedule.get(key(a.scheduledEventId));
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'failed', failure: failureMessage(a.failure), endDetails: decodeOptional(a.failure?.applicationFailureInfo?.details) });
    } else if (ev.activityTaskTimedOutEventAttributes) {
      const a = ev.activityTaskTimedOutEventAttributes;
      const rec = bySchedule.get(key(a.scheduledEventId));
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'timedOut', failure: failureMessage(a.failure), endDetails: decodeOptional(a.failure?.timeoutFailureInfo?.lastHeartbeatDetails) });
    } else if (ev.activityTaskCanceledEventAttributes) {
      const a = ev.activityTaskCanceledEventAttributes;
      const rec = bySchedule.get(key(a.scheduledEventId));
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'canceled', endDetails: decodeOptional(a.details) });
    } else if (ev.workflowExecutionSignaledEventAttributes) {
      const a = ev.workflowExecutionSignaledEventAttributes;
      record.messages.push({ kind: 'signal', name: a.signalName ?? '?', time: ms(ev.eventTime), input: decodeOptional(a.input), identity: a.identity ?? undefined });
    } else if (ev.workflowExecutionUpdateAcceptedEventAttributes) {
      const req = ev.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      record.messages.push({
        kind: 'update',
        name: req?.input?.name ?? '?',
        time: ms(ev.eventTime),
        input: decodeOptional(req?.input?.args),
        identity: req?.meta?.identity ?? undefined,
      });
    } else if (ev.startChildWorkflowExecutionInitiatedEventAttributes) {
      const a = ev.startChildWorkflowExecutionInitiatedEventAttributes;
      const rec: ChildRecord = { workflowId: a.workflowId ?? '', workflowType: a.workflowType?.name ?? '?', initiatedAt: ms(ev.eventTime) };
      byInitiated.set(id, rec);
      record.children.push(rec);
    } else if (ev.childWorkflowExecutionStartedEventAttributes) {
      const rec = child(ev.childWorkflowExecutionStartedEventAttributes.initiatedEventId, run);
      if (rec) rec.startedAt = ms(ev.eventTime);
    } else if (ev.startChildWorkflowExecutionFailedEventAttributes) {
      const a = ev.startChildWorkflowExecutionFailedEventAttributes;
      const rec = child(a.initiatedEventId, run);
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'notStarted', failure: `not started: ${temporal.api.enums.v1.StartChildWorkflowExecutionFailedCause[a.cause ?? 0] ?? 'unknown cause'}` });
    } else if (ev.childWorkflowExecutionCompletedEventAttributes) {
      const a = ev.childWorkflowExecutionCompletedEventAttributes;
      const rec = child(a.initiatedEventId, run);
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'completed', result: decodeOptional(a.result) });
    } else if (ev.childWorkflowExecutionFailedEventAttributes) {
      const a = ev.childWorkflowExecutionFailedEventAttributes;
      const rec = child(a.initiatedEventId, run);
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome: 'failed', failure: failureMessage(a.failure) });
    } else if (ev.childWorkflowExecutionCanceledEventAttributes || ev.childWorkflowExecutionTerminatedEventAttributes || ev.childWorkflowExecutionTimedOutEventAttributes) {
      const a = ev.childWorkflowExecutionCanceledEventAttributes ?? ev.childWorkflowExecutionTerminatedEventAttributes ?? ev.childWorkflowExecutionTimedOutEventAttributes;
      const rec = child(a?.initiatedEventId, run);
      const outcome = ev.childWorkflowExecutionCanceledEventAttributes ? 'canceled' : ev.childWorkflowExecutionTerminatedEventAttributes ? 'terminated' : 'timedOut';
      if (rec) Object.assign(rec, { endedAt: ms(ev.eventTime), outcome });
    } else if (ev.workflowExecutionCancelRequestedEventAttributes) {
      record.cancelRequestedAt ??= ms(ev.eventTime);
    } else if (ev.workflowExecutionCompletedEventAttributes) {
      record.result = decode(ev.workflowExecutionCompletedEventAttributes.result);
    } else if (ev.workflowExecutionFailedEventAttributes) {
      record.failure = failureMessage(ev.workflowExecutionFailedEventAttributes.failure);
    }
  }
  for (const p of description.raw.pendingActivities ?? []) {
    const rec = [...record.activities].reverse().find((a) => !a.outcome && a.activityId === p.activityId);
    if (!rec) continue;
    rec.attempt = p.attempt ?? rec.attempt;
    if (p.lastStartedTime) rec.startedAt = ms(p.lastStartedTime);
    rec.pending = {
      // The SDK's enum names carry a prefix (PENDING_ACTIVITY_STATE_STARTED); the record keeps the state itself.
      state: (temporal.api.enums.v1.PendingActivityState[p.state ?? 0] ?? 'UNKNOWN').replace(/^PENDING_ACTIVITY_STATE_/, ''),
      heartbeat: decodeOptional(p.heartbeatDetails),
      lastHeartbeatAt: p.lastHeartbeatTime ? ms(p.lastHeartbeatTime) : undefined,
      lastFailure: failureMessage(p.lastFailure),
    };
  }
  return record;
}
