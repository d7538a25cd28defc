import type { LiveProgress } from '../live/nova-live-migration-run';
import type { LiveMigrationRecord } from '../targets/openstack/nova-live-migrations';
import type { ActivityRecord, WorkflowRecord } from './workflow-history';

/**
 * What happened to a live migration or a host drain, in order, as events named like a migration's: read from the
 * workflow's history (activities, child workflows, a cancel request), plus one `live: true` progress event from the
 * running watch's latest heartbeat.
 */
export interface HostOperationEvent {
  name: string;
  time: string;
  live?: boolean;
  data?: Record<string, unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** How the workflow ended, as its last event (nothing while it runs). */
function endEvent(rec: WorkflowRecord, prefix: 'live' | 'drain'): HostOperationEvent[] {
  if (rec.closedAt === undefined) return [];
  const time = iso(rec.closedAt);
  if (rec.status === 'COMPLETED') return [{ name: `${prefix}.completed`, time }];
  if (rec.status === 'CANCELLED') return [{ name: `${prefix}.cancelled`, time }];
  return [{ name: `${prefix}.failed`, time, data: { status: rec.status, ...(rec.failure ? { error: rec.failure } : {}) } }];
}

/** An activity's end as an event: `ok` with what it found, or `failed` with why; `common` goes with either. */
function ended(a: ActivityRecord, ok: string, failed: string, data: (a: ActivityRecord) => Record<string, unknown> | undefined, common: Record<string, unknown> = {}): HostOperationEvent[] {
  if (a.outcome === 'completed') return [{ name: ok, time: iso(a.endedAt!), ...withData({ ...common, ...data(a) }) }];
  if (a.outcome === 'failed' || a.outcome === 'timedOut') return [{ name: failed, time: iso(a.endedAt!), data: { ...common, error: a.failure } }];
  return [];
}

const withData = (data: Record<string, unknown>) => {
  const kept = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
  return Object.keys(kept).length ? { data: kept } : {};
};

export function liveMigrationEvents(rec: WorkflowRecord, requestedBy: string): HostOperationEvent[] {
  const events: HostOperationEvent[] = [{ name: 'live.requested', time: iso(rec.startedAt), data: { by: requestedBy } }];
  if (rec.cancelRequestedAt !== undefined) events.push({ name: 'cancel.requested', time: iso(rec.cancelRequestedAt) });
  for (const a of rec.activities) {
    if (a.type === 'checkLiveMigration') {
      events.push(
        ...ended(a, 'checks.passed', 'checks.failed', (x) => {
          const r = x.result as { server?: { host?: string }; prerequisites?: { candidates?: string[]; mode?: string } } | undefined;
          return { source: r?.server?.host, candidates: r?.prerequisites?.candidates, mode: r?.prerequisites?.mode };
        }),
      );
    } else if (a.type === 'startLiveMigration') {
      events.push(...ended(a, 'migration.started', 'migration.start_failed', (x) => ({ alreadyStarted: (x.result as { alreadyStarted?: boolean } | undefined)?.alreadyStarted })));
    } else if (a.type === 'watchLiveMigration') {
      const beat = (a.pending?.heartbeat ?? a.endDetails) as LiveProgress | undefined;
      if (!a.outcome && beat) {
        events.push({ name: 'migration.progress', time: iso(a.pending?.lastHeartbeatAt ?? a.startedAt ?? a.scheduledAt), live: true, data: { ...beat } });
      }
      events.push(
        ...ended(a, 'migration.completed', 'migration.failed', (x) => {
          const r = x.result as LiveMigrationRecord | undefined;
          return { destination: r?.destCompute, downtimeMs: r?.downtimeMs, durationMs: r?.durationMs, transferredBytes: r?.transferredBytes, ...(r?.postCopy ? { postCopy: true } : {}) };
        }),
      );
    } else if (a.type === 'verifyLiveMigration') {
      events.push(...ended(a, 'verify.passed', 'verify.failed', (x) => ({ host: (x.result as { host?: string } | undefined)?.host })));
    } else if (a.type === 'abortLiveMigration') {
      events.push(...ended(a, 'migration.aborted', 'migration.abort_failed', (x) => ({ aborted: (x.result as { aborted?: boolean } | undefined)?.aborted })));
    }
  }
  events.push(...endEvent(rec, 'live'));
  return events.sort((x, y) => x.time.localeCompare(y.time));
}

export function hostDrainEvents(rec: WorkflowRecord, input: { requestedBy: string; host: string; reason: string }): HostOperationEvent[] {
  const events: HostOperationEvent[] = [{ name: 'drain.requested', time: iso(rec.startedAt), data: { by: input.requestedBy, host: input.host } }];
  if (rec.cancelRequestedAt !== undefined) events.push({ name: 'cancel.requested', time: iso(rec.cancelRequestedAt) });
  for (const a of rec.activities) {
    if (a.type === 'disableComputeHost') events.push(...ended(a, 'host.disabled', 'host.disable_failed', () => ({ reason: input.reason })));
    else if (a.type === 'serversOnComputeHost') events.push(...ended(a, 'servers.listed', 'servers.list_failed', (x) => ({ count: (x.result as unknown[] | undefined)?.length })));
    else if (a.type === 'enableComputeHost') events.push(...ended(a, 'host.enabled', 'host.enable_failed', () => undefined));
    else if (a.type === 'coldMoveServer') {
      const serverId = (a.input as { serverId?: string } | undefined)?.serverId;
      events.push({ name: 'server.move_started', time: iso(a.scheduledAt), data: { serverId, how: 'cold' } });
      events.push(...ended(a, 'server.moved', 'server.not_moved', (x) => ({ to: (x.result as { to?: string } | undefined)?.to }), { serverId, how: 'cold' }));
    }
  }
  for (const c of rec.children.filter((x) => x.workflowType === 'liveMigration')) {
    const migration = c.workflowId;
    events.push({ name: 'server.move_started', time: iso(c.initiatedAt), data: { migration, how: 'live' } });
    if (c.outcome === 'completed') events.push({ name: 'server.moved', time: iso(c.endedAt!), data: { migration, how: 'live', to: (c.result as { destination?: string } | undefined)?.destination } });
    else if (c.outcome) events.push({ name: 'server.not_moved', time: iso(c.endedAt!), data: { migration, how: 'live', outcome: c.outcome, ...(c.failure ? { error: c.failure } : {}) } });
  }
  events.push(...endEvent(rec, 'drain'));
  return events.sort((x, y) => x.time.localeCompare(y.time));
}
