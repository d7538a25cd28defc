import type {
  ExportDiskInput,
  ExportDiskProgress,
  ExportDiskResult,
  ExportSessionReport,
  GuestFixReport,
  PowerOffResult,
  SourceInspection,
  BootCheckReport,
  GuestInspection,
  ShutdownSourceResult,
  SourceVmPlan,
  SyncDiskInput,
  SyncDiskProgress,
  SyncDiskResult,
  SyncSnapshot,
} from '../activities';
import type { WarmMigrationState } from '../workflows/warm-migration-state';
import type { AgentDiskResult } from '../activities';
import type { AgentMigrationInput, ColdMigrationInput } from '../shared/migration-input';
import { agentMachineStatus, type AgentMachineStatus } from './agent-migration-view';
import type { MigrationEventName, MigrationStage } from '../shared/migration-stages';
import type { InstanceRef } from '../targets/target-provider';
import type { ActivityRecord, WorkflowRecord } from './workflow-history';

/**
 * Turns a migration's Temporal record into what the API shows: the seed's event stream and a status summary.
 * Events that happened come from the event history; `live: true` events come from a running activity's last
 * heartbeat and are replaced by the durable ones once it completes.
 */

export interface MigrationEvent {
  name: MigrationEventName;
  /** The lifecycle stage the event belongs to. */
  stage: MigrationStage;
  time: string;
  disk?: number;
  live?: boolean;
  data?: Record<string, unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();
const EMPTY_PROGRESS = { total: 0, processed: 0, remaining: 0 };

const STAGE_OF: Record<MigrationEventName, MigrationStage> = {
  'source.powered_off': 'Export',
  'export.started': 'Export',
  'export.progress': 'WriteVolume',
  'write.started': 'WriteVolume',
  'write.progress': 'WriteVolume',
  'guest_fixes.started': 'GuestFixes',
  'finalize.completed': 'Finalize',
  'migration.completed': 'Completed',
  'migration.failed': 'Failed',
  'migration.cancelled': 'Cancelled',
  'cbt.enabled': 'Queued',
  'snapshot.created': 'Syncing',
  'sync.progress': 'Syncing',
  'snapshot.removed': 'Syncing',
  'cutover.requested': 'Ready',
  'inspect.completed': 'Inspect',
  'validation.boot_check': 'Finalize',
  'migration.submitted': 'Queued',
  'migration.admitted': 'Queued',
  'cancel.requested': 'Cancelled',
  'migration.retried': 'Queued',
  'replication.started': 'Queued',
};

/** An event whose stage is not fixed by its name (a warm sync's events belong to FullSync, Syncing or CuttingOver). */
type Unstaged = Omit<MigrationEvent, 'stage'> & { stage?: MigrationStage };

const SYNC_STAGE: Record<string, MigrationStage> = { 'full sync': 'FullSync', 'incremental sync': 'Syncing', 'final sync': 'CuttingOver' };

function activityEvents(a: ActivityRecord, workflowType: string): Unstaged[] {
  const out: Unstaged[] = [];
  const completed = a.outcome === 'completed';
  switch (a.type) {
    case 'powerOff':
      if (completed) out.push({ name: 'source.powered_off', time: iso(a.endedAt!), data: { ...(a.result as PowerOffResult) } });
      break;
    case 'openExport':
    case 'openAgentExport':
      if (completed) out.push({ name: 'export.started', time: iso(a.endedAt!), data: { disks: (a.result as ExportSessionReport).disks } });
      break;
    case 'exportDisk':
    case 'copyAgentDisk': {
      const input = a.input as ExportDiskInput;
      if (a.startedAt !== undefined) {
        out.push({ name: 'write.started', time: iso(a.startedAt), disk: input.diskKey, data: { volume: input.target.volumeName, attempt: a.attempt } });
      }
      if (completed) {
        const r = a.result as ExportDiskResult;
        const t = iso(a.endedAt!);
        out.push({ name: 'export.progress', time: t, disk: r.disk, data: { bytesRead: r.bytesRead, bytesTotal: r.bytesTotal, resumedFrom: r.resumedFrom } });
        out.push({
          name: 'write.progress',
          time: t,
          disk: r.disk,
          data: { bytesDone: r.bytesTotal, bytesTotal: r.bytesTotal, bytesWritten: r.bytesWritten, verification: r.verification },
        });
      } else if (a.pending?.heartbeat) {
        const h = a.pending.heartbeat as ExportDiskProgress;
        const t = iso(a.pending.lastHeartbeatAt ?? Date.now());
        out.push({ name: 'export.progress', time: t, disk: h.disk, live: true, data: { bytesRead: h.bytesRead, bytesTotal: h.bytesTotal } });
        out.push({ name: 'write.progress', time: t, disk: h.disk, live: true, data: { bytesDone: h.bytesDone, bytesTotal: h.bytesTotal, bytesWritten: h.bytesWritten } });
      }
      break;
    }
    case 'prepareChangeTracking':
      if (completed) out.push({ name: 'cbt.enabled', time: iso(a.endedAt!), data: { ...(a.result as object) } });
      break;
    case 'createSyncSnapshot': {
      const input = a.input as { sync: number; purpose: string };
      if (completed) {
        const r = a.result as SyncSnapshot;
        out.push({ name: 'snapshot.created', stage: SYNC_STAGE[input.purpose], time: iso(a.endedAt!), data: { sync: input.sync, purpose: input.purpose, snapshot: r.name, disks: r.disks } });
      }
      break;
    }
    case 'syncDisk': {
      const input = a.input as SyncDiskInput;
      if (completed) {
        const r = a.result as SyncDiskResult;
        const { volume: _volume, ...data } = r;
        out.push({ name: 'sync.progress', time: iso(a.endedAt!), disk: r.disk, data: { ...data, volume: r.volume.name } });
      } else if (a.pending?.heartbeat) {
        const h = a.pending.heartbeat as SyncDiskProgress;
        out.push({ name: 'sync.progress', time: iso(a.pending.lastHeartbeatAt ?? Date.now()), disk: input.diskKey, live: true, data: { ...h } });
      }
      break;
    }
    case 'removeSyncSnapshots':
      if (completed && (a.result as { removed: string[] }).removed.length) out.push({ name: 'snapshot.removed', time: iso(a.endedAt!), data: { ...(a.result as object) } });
      break;
    case 'shutdownSource':
      // A warm migration stops its source at cutover; a cold one asked for a clean shutdown does so in Export.
      if (completed) out.push({ name: 'source.powered_off', stage: workflowType === 'coldMigration' ? 'Export' : 'CuttingOver', time: iso(a.endedAt!), data: { ...(a.result as ShutdownSourceResult) } });
      break;
    case 'inspectGuest':
    case 'inspectAgentSource':
      if (completed) {
        const g = a.type === 'inspectGuest' ? (a.result as GuestInspection) : (a.result as { guestInspection?: GuestInspection }).guestInspection;
        if (!g) break;
        out.push({
          name: 'inspect.completed',
          time: iso(a.endedAt!),
          data: { osFamily: g.osFamily, distro: g.distro, version: g.version, product: g.product, firmware: g.firmware, partitionTable: g.partitionTable, filesystems: g.filesystems, encrypted: g.encrypted, convertible: g.convertible, warnings: g.warnings },
        });
      }
      break;
    case 'guestFix':
      if (a.startedAt !== undefined) out.push({ name: 'guest_fixes.started', time: iso(a.startedAt) });
      break;
    case 'bootCheck':
      if (completed) {
        const r = a.result as BootCheckReport;
        out.push({ name: 'validation.boot_check', time: iso(a.endedAt!), data: { passed: r.passed, durationMs: r.durationMs, reason: r.reason, ...(r.passed ? {} : { consoleTail: r.consoleTail }) } });
      }
      break;
    case 'finalize':
      if (completed) out.push({ name: 'finalize.completed', time: iso(a.endedAt!), data: { instance: a.result as InstanceRef } });
      break;
  }
  return out;
}

export function migrationEvents(rec: WorkflowRecord): MigrationEvent[] {
  const input = rec.input as ColdMigrationInput | undefined;
  const events: Unstaged[] = [];
  if (input?.submittedBy) events.push({ name: 'migration.submitted', time: iso(rec.startedAt), data: { by: input.submittedBy } });
  if (input?.retry) {
    const disks = Object.values(input.retry.disks);
    events.push({ name: 'migration.retried', time: iso(rec.startedAt), data: { by: input.retry.by, previousRunId: input.retry.previousRunId, reusedDisks: disks.filter((d) => d.copied || d.changeId).length, resumedDisks: disks.filter((d) => d.resumeFrom).length } });
  }
  events.push(...rec.activities.flatMap((a) => activityEvents(a, rec.workflowType)));
  for (const m of rec.messages) {
    if (m.name === 'cutover') {
      const request = m.input as { actor?: string } | undefined;
      events.push({ name: 'cutover.requested', time: iso(m.time), data: { via: m.kind, actor: request?.actor, request: m.input, identity: m.identity } });
    } else if (m.name === 'copySlotsGranted') {
      events.push({ name: 'migration.admitted', time: iso(m.time), data: { copySlots: (m.input as { copySlots?: number } | undefined)?.copySlots, waitedSeconds: Math.round((m.time - rec.startedAt) / 1000) } });
    } else if (m.name === 'startReplication' && m.kind === 'update') {
      events.push({ name: 'replication.started', time: iso(m.time), data: { by: (m.input as { actor?: string } | undefined)?.actor } });
    } else if (m.name === 'audit') {
      const entry = m.input as { action?: string; actor?: string } | undefined;
      if (entry?.action === 'cancel') events.push({ name: 'cancel.requested', time: iso(m.time), data: { by: entry.actor } });
    }
  }
  events.sort((x, y) => Date.parse(x.time) - Date.parse(y.time));
  if (rec.closedAt !== undefined) {
    if (rec.status === 'COMPLETED') events.push({ name: 'migration.completed', time: iso(rec.closedAt), data: { instance: (rec.result as { instance?: InstanceRef })?.instance } });
    else if (rec.status === 'CANCELLED') events.push({ name: 'migration.cancelled', time: iso(rec.closedAt) });
    else events.push({ name: 'migration.failed', time: iso(rec.closedAt), data: { status: rec.status, reason: rec.failure } });
  }
  // Snapshot removal belongs to the sync that made it: the stage of the snapshot event before it.
  let syncStage: MigrationStage | undefined;
  return events.map((e) => {
    if (e.name === 'snapshot.created') syncStage = e.stage;
    const stage = e.stage ?? (e.name === 'sync.progress' || e.name === 'snapshot.removed' ? syncStage : undefined) ?? STAGE_OF[e.name];
    return { ...e, stage };
  });
}

export interface DiskStatus {
  key: number;
  label: string;
  capacityBytes: number;
  /** Durably written to the target (the resume watermark while copying). */
  bytesDone: number;
  bytesRead: number;
  /** Cold: the disk's one copy. Warm: its latest sync (`synced` once one has completed and none is running). */
  state: 'pending' | 'copying' | 'retrying' | 'copied' | 'failed' | 'cancelled' | 'syncing' | 'synced';
  /** Warm: the last completed sync's mode and change id. */
  lastSync?: { mode: string; changeId?: string; areaBytes: number; bytesRead: number };
  volume?: string;
  attempt?: number;
  verification?: ExportDiskResult['verification'];
  lastError?: string;
  /** Bytes of the disk, durably written so far, and left (the model of Nova's migration progress). */
  progress: { total: number; processed: number; remaining: number };
  /** While copying: this attempt's read rate, and the time left at that rate. */
  rateBytesPerSecond?: number;
  etaSeconds?: number;
}

export interface MigrationStatus {
  id: string;
  kind: string;
  status: string;
  stage: string;
  startedAt: string;
  closedAt?: string;
  sourceId: string;
  vm: ColdMigrationInput['vm'];
  target: ColdMigrationInput['target'];
  sourceVm?: { moref: string; name: string };
  disks: DiskStatus[];
  bytesTotal: number;
  bytesDone: number;
  inspection?: { osFamily: string; guestId: string; firmware: string };
  guestConversion?: { converted: boolean; reason?: string };
  /** libguestfs inspection of the guest (OS, firmware, partitions, file systems, encryption). */
  guestInspection?: GuestInspection;
  /** The boot check after Finalize, when asked for. */
  validation?: { bootCheck: BootCheckReport };
  instance?: InstanceRef;
  /** The worker host holding the volumes, when the target keeps them as files on a worker (its volume work runs there). */
  workerHost?: string;
  warnings: string[];
  error?: string;
  /** Who submitted it, and who asked for a cancel (from the migration's own history). */
  submittedBy?: string;
  /** The verdict the migration was accepted with (absent on migrations submitted before verdicts). */
  preflight?: ColdMigrationInput['preflight'];
  audit: Array<{ action: string; actor?: string; at: string }>;
  /** Bytes of all disks: total, durably written, left. */
  progress: { total: number; processed: number; remaining: number };
  /** Warm migrations, while running: the workflow's own view (syncs, dirty rate, predicted downtime, cutover). */
  /** Agent migrations: the machine as the agent found it, its boots, and whether it waits for a confirmation. */
  agent?: AgentMachineStatus;
  warm?: Pick<WarmMigrationState, 'syncs' | 'totals' | 'forecast' | 'cutover' | 'lastSyncError' | 'nextSyncAt' | 'changeTracking' | 'run'>;
}

export function migrationStatus(rec: WorkflowRecord, live?: WarmMigrationState): MigrationStatus {
  const input = rec.input as ColdMigrationInput;
  const plan = completedResult<SourceVmPlan>(rec, 'preflight') ?? completedResult<SourceVmPlan>(rec, 'planAgentMachine');
  const copies = rec.activities.filter((a) => a.type === 'exportDisk' || a.type === 'copyAgentDisk');
  const syncs = rec.activities.filter((a) => a.type === 'syncDisk');
  const disks: DiskStatus[] = (plan?.disks ?? []).map((d) => {
    if (rec.workflowType === 'warmMigration') return warmDiskStatus(d, syncs.filter((a) => (a.input as SyncDiskInput).diskKey === d.key));
    const attempts = copies.filter((a) => (a.input as ExportDiskInput).diskKey === d.key);
    const a = attempts[attempts.length - 1];
    const base: DiskStatus = { key: d.key, label: d.label, capacityBytes: d.capacityBytes, bytesDone: 0, bytesRead: 0, state: 'pending', progress: EMPTY_PROGRESS };
    if (!a) return base;
    base.volume = (a.input as ExportDiskInput).target.volumeName;
    base.attempt = a.attempt;
    if (a.outcome === 'completed') {
      const r = a.result as ExportDiskResult;
      return { ...base, state: 'copied', bytesDone: r.bytesTotal, bytesRead: r.bytesRead, verification: r.verification };
    }
    if (a.outcome) {
      // Ended without completing: how far it durably got comes from the failure's details (see exportDisk).
      const p = a.endDetails as ExportDiskProgress | undefined;
      return { ...base, state: a.outcome === 'canceled' ? 'cancelled' : 'failed', bytesDone: p?.bytesDone ?? 0, bytesRead: p?.bytesRead ?? 0, lastError: a.failure };
    }
    const h = a.pending?.heartbeat as ExportDiskProgress | undefined;
    const copying = a.pending?.state === 'STARTED';
    const elapsedS = a.pending?.lastHeartbeatAt !== undefined && a.startedAt !== undefined ? (a.pending.lastHeartbeatAt - a.startedAt) / 1000 : 0;
    const rate = copying && h && elapsedS > 0 ? h.bytesRead / elapsedS : undefined;
    return {
      ...base,
      state: a.pending?.lastFailure && !copying ? 'retrying' : a.pending ? 'copying' : 'pending',
      bytesDone: h?.bytesDone ?? 0,
      bytesRead: h?.bytesRead ?? 0,
      lastError: a.pending?.lastFailure,
      ...(rate ? { rateBytesPerSecond: Math.round(rate), etaSeconds: Math.round((d.capacityBytes - (h?.bytesDone ?? 0)) / rate) } : {}),
    };
  });
  for (const d of disks) {
    const total = d.capacityBytes;
    const processed = Math.min(total, d.bytesDone);
    d.progress = { total, processed, remaining: total - processed };
  }
  const recorded = rec.searchAttributes.MigrationState;
  // The instance as it was last seen: started after Finalize when the migration asked for that.
  const instance = completedResult<InstanceRef>(rec, 'startInstance') ?? completedResult<InstanceRef>(rec, 'finalize');
  const inspection = completedResult<SourceInspection>(rec, 'inspectSource') ?? completedResult<{ inspection: SourceInspection }>(rec, 'inspectAgentSource')?.inspection;
  const guestFix = completedResult<GuestFixReport>(rec, 'guestFix');
  return {
    id: rec.workflowId,
    kind: String(rec.searchAttributes.MigrationKind ?? 'cold'),
    status: rec.status,
    stage: stageOf(rec.status, String(recorded ?? 'Queued')),
    startedAt: iso(rec.startedAt),
    closedAt: rec.closedAt !== undefined ? iso(rec.closedAt) : undefined,
    sourceId: input.sourceId,
    vm: input.vm ?? { moref: (rec.input as AgentMigrationInput).machineId, name: (rec.input as AgentMigrationInput).machine?.guest.name },
    target: input.target,
    sourceVm: plan ? { moref: plan.moref, name: plan.name } : undefined,
    disks,
    bytesTotal: disks.reduce((s, d) => s + d.capacityBytes, 0),
    bytesDone: disks.reduce((s, d) => s + d.bytesDone, 0),
    progress: ((total, processed) => ({ total, processed, remaining: total - processed }))(
      disks.reduce((s, d) => s + d.progress.total, 0),
      disks.reduce((s, d) => s + d.progress.processed, 0),
    ),
    submittedBy: input.submittedBy,
    preflight: input.preflight,
    // Created to be started later and not started yet.
    ...(input.startReplication === false && rec.status === 'RUNNING' && !rec.messages.some((m) => m.name === 'startReplication') ? { awaitingStart: true } : {}),
    audit: [
      ...(input.retry ? [{ action: 'retry', actor: input.retry.by, at: input.retry.at }] : []),
      ...rec.messages.filter((m) => m.name === 'audit').map((m) => ({ ...(m.input as { action: string; actor?: string }), at: iso(m.time) })),
    ],
    inspection: inspection && { osFamily: inspection.osFamily, guestId: inspection.guestId, firmware: inspection.firmware },
    guestConversion: guestFix && { converted: guestFix.converted, reason: guestFix.reason },
    guestInspection: completedResult<GuestInspection>(rec, 'inspectGuest') ?? completedResult<{ guestInspection?: GuestInspection }>(rec, 'inspectAgentSource')?.guestInspection,
    validation: ((r) => r && { bootCheck: r })(completedResult<BootCheckReport>(rec, 'bootCheck')),
    instance,
    workerHost: completedResult<{ hostId: string } | null>(rec, 'claimWorkerHost')?.hostId,
    warnings: live?.warnings ?? [
      ...(plan?.warnings ?? []),
      // A clean shutdown that had to fall back to a hard power-off says so.
      ...((n) => (n ? [n] : []))(completedResult<ShutdownSourceResult>(rec, 'shutdownSource')?.note),
      ...(guestFix && !guestFix.converted && guestFix.reason ? [guestFix.reason] : []),
      // A machine whose disk changed between two boots of the agent: that disk was copied again.
      ...copies.flatMap((a) => (a.outcome === 'completed' && (a.result as AgentDiskResult).sourceChanged ? [(a.result as AgentDiskResult).sourceChanged!] : [])),
    ],
    ...(rec.workflowType === 'agentMigration' ? { agent: agentMachineStatus(rec) } : {}),
    error: rec.failure,
    warm: live && {
      run: live.run,
      changeTracking: live.changeTracking,
      syncs: live.syncs,
      totals: live.totals,
      forecast: live.forecast,
      cutover: live.cutover,
      lastSyncError: live.lastSyncError,
      nextSyncAt: live.nextSyncAt,
    },
  };
}

/** A warm migration's disk: its volume and latest sync (the target is complete as of the last completed one). */
function warmDiskStatus(d: SourceVmPlan['disks'][number], syncs: WorkflowRecord['activities']): DiskStatus {
  const base: DiskStatus = { key: d.key, label: d.label, capacityBytes: d.capacityBytes, bytesDone: 0, bytesRead: 0, state: 'pending', progress: EMPTY_PROGRESS };
  const done = syncs.filter((a) => a.outcome === 'completed').at(-1);
  const last = syncs.at(-1);
  if (done) {
    const r = done.result as SyncDiskResult;
    Object.assign(base, { state: 'synced', volume: r.volume.name, bytesDone: d.capacityBytes, bytesRead: r.bytesRead, verification: undefined });
    base.lastSync = { mode: r.mode, changeId: r.changeId, areaBytes: r.areaBytes, bytesRead: r.bytesRead };
  }
  if (last && !last.outcome) {
    const h = last.pending?.heartbeat as SyncDiskProgress | undefined;
    Object.assign(base, { state: 'syncing', attempt: last.attempt, lastError: last.pending?.lastFailure, bytesRead: h?.bytesRead ?? 0 });
  } else if (last && last.outcome && last.outcome !== 'completed') {
    Object.assign(base, { state: last.outcome === 'canceled' ? 'cancelled' : 'failed', lastError: last.failure });
  }
  return base;
}

function completedResult<T>(rec: WorkflowRecord, type: string): T | undefined {
  return rec.activities.find((a) => a.type === type && a.outcome === 'completed')?.result as T | undefined;
}

/**
 * The stage the workflow last recorded, except when Temporal itself ended the run (terminated, timed out) and the
 * workflow never got to record how it ended.
 */
function stageOf(status: string, recorded: string): string {
  if (status === 'COMPLETED') return 'Completed';
  if (status === 'CANCELLED') return 'Cancelled';
  if (status === 'FAILED' || status === 'TERMINATED' || status === 'TIMED_OUT') return recorded === 'Cancelled' ? recorded : 'Failed';
  return recorded;
}
