import { hostDrainEvents, liveMigrationEvents, type HostOperationEvent } from './host-operation-events';
import type { WorkflowRecord } from './workflow-history';
import type { LiveProgress } from '../live/nova-live-migration-run';
import type { LiveMigrationInput } from '../shared/live-migration-input';
import type { HostDrainInput, HostDrainState } from '../workflows/host-drain';
import type { LiveMigrationState } from '../workflows/live-migration-state';

/**
 * A live migration or a host drain as the API shows it, read from the workflow's history alone (no worker needed):
 * its request, its stage, what its checks found, its progress from the watch's latest heartbeat, and how it ended.
 */

export interface LiveMigrationView {
  id: string;
  kind: 'live';
  target: string;
  serverId: string;
  serverName?: string;
  requestedBy: string;
  requestedDestination?: string;
  stage: string;
  status: string;
  startedAt: string;
  closedAt?: string;
  source?: string;
  candidates?: string[];
  mode?: 'live' | 'block';
  destination?: string;
  /** The watch's latest heartbeat while it runs (QEMU's job info on libvirt: dirty rate, expected downtime). */
  progress?: LiveProgress;
  /** Memory and disk sent and left: from the latest heartbeat while it runs, from the migration's record once done. */
  memory?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  disk?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  downtimeMs?: number;
  durationMs?: number;
  /** Completed in post-copy (libvirt, where the target permits it). */
  postCopy?: boolean;
  error?: string;
  events: HostOperationEvent[];
}

const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function liveMigrationView(id: string, rec: WorkflowRecord): LiveMigrationView {
  const input = rec.input as LiveMigrationInput;
  const result = rec.result as LiveMigrationState | undefined;
  const check = rec.activities.find((a) => a.type === 'checkLiveMigration' && a.outcome === 'completed')?.result as
    | { server: { name: string; host?: string }; prerequisites: { candidates: string[]; mode: 'live' | 'block' } }
    | undefined;
  const watch = rec.activities.filter((a) => a.type === 'watchLiveMigration').at(-1);
  const placed = rec.activities.find((a) => a.type === 'verifyLiveMigration' && a.outcome === 'completed')?.result as { host?: string } | undefined;
  const record = result?.record ?? (watch?.outcome === 'completed' ? (watch.result as LiveMigrationState['record']) : undefined);
  const progress = (watch?.pending?.heartbeat ?? watch?.endDetails) as LiveProgress | undefined;
  const view: LiveMigrationView = {
    id,
    kind: 'live',
    target: input.target.name,
    serverId: input.serverId,
    requestedBy: input.requestedBy,
    stage: String(rec.searchAttributes.MigrationState ?? 'Queued'),
    status: rec.status,
    startedAt: iso(rec.startedAt)!,
    events: liveMigrationEvents(rec, input.requestedBy),
  };
  const set = <K extends keyof LiveMigrationView>(k: K, v: LiveMigrationView[K] | undefined) => {
    if (v !== undefined) view[k] = v;
  };
  set('closedAt', iso(rec.closedAt));
  set('requestedDestination', input.destination);
  set('serverName', check?.server.name);
  set('source', check?.server.host);
  set('candidates', check?.prerequisites.candidates);
  set('mode', check?.prerequisites.mode);
  set('destination', placed?.host ?? result?.destination);
  set('progress', progress);
  set('memory', record?.memory ?? progress?.memory);
  set('disk', record?.disk ?? progress?.disk);
  set('downtimeMs', record?.downtimeMs);
  set('durationMs', record?.durationMs);
  set('postCopy', record?.postCopy);
  set('error', rec.failure);
  return view;
}

export interface HostDrainView {
  id: string;
  kind: 'drain';
  target: string;
  host: string;
  reason: string;
  maxInFlight: number;
  reenable: boolean;
  requestedBy: string;
  stage: string;
  status: string;
  startedAt: string;
  closedAt?: string;
  /** Each server's move: its live migration's id under /live-migrations (or `how: cold` for a stopped server), where it went, or why it did not. */
  servers?: HostDrainState['servers'];
  moved?: number;
  notMoved?: number;
  reenabled?: boolean;
  error?: string;
  events: HostOperationEvent[];
}

export function hostDrainView(id: string, rec: WorkflowRecord): HostDrainView {
  const input = rec.input as HostDrainInput;
  const result = rec.result as HostDrainState | undefined;
  const view: HostDrainView = {
    id,
    kind: 'drain',
    target: input.target.name,
    host: input.host,
    reason: input.reason,
    maxInFlight: input.maxInFlight ?? 1,
    reenable: input.reenable ?? false,
    requestedBy: input.requestedBy,
    stage: String(rec.searchAttributes.MigrationState ?? 'Queued'),
    status: rec.status,
    startedAt: iso(rec.startedAt)!,
    events: hostDrainEvents(rec, input),
  };
  if (rec.closedAt !== undefined) view.closedAt = iso(rec.closedAt);
  if (result) Object.assign(view, { servers: result.servers, moved: result.moved, notMoved: result.notMoved, ...(result.reenabled !== undefined ? { reenabled: result.reenabled } : {}) });
  if (rec.failure) view.error = rec.failure;
  return view;
}
