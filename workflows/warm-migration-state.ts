import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ChangeTrackingReport, GuestFixReport, GuestInspection, ShutdownSourceResult, SourceVmPlan } from '../activities';
import type { MigrationValidation } from './cold-migration-state';
import type { CutoverRequest } from '../shared/migration-input';
import type { MigrationStage } from '../shared/migration-stages';
import type { InstanceRef, VolumeRef } from '../targets/target-provider';
import type { SyncForecast, SyncRecord } from './sync-forecast';
import type { AuditEntry } from './migration-audit';
import type { WorkerHost } from '../shared/task-queues';

export interface WarmDiskState {
  key: number;
  label: string;
  capacityBytes: number;
  volume?: VolumeRef;
  /** Change id of the last completed sync: the next incremental sync asks CBT for changes since this. */
  changeId?: string;
  /** Set when the next sync of this disk must be a full one. */
  fullSyncReason?: string;
  /** A retried migration, until its first sync: the volume the earlier run synced to `changeId`. */
  keptVolumeId?: string;
  /** A retried migration, until its first sync: the volume may hold an earlier run's bytes, to be cleared where stale. */
  clearStaleData?: boolean;
}

export interface AcceptedCutover {
  actor: string;
  via: 'update' | 'signal' | 'schedule';
  requestedAt: string;
  /** Scheduled time, if not "now". */
  at?: string;
}

/** Everything a warm migration carries from one run to the next (continue-as-new). */
export interface WarmCarryOver {
  run: number;
  plan: SourceVmPlan;
  changeTracking: ChangeTrackingReport;
  disks: WarmDiskState[];
  /** The most recent syncs (older ones are summarised in `totals`). */
  syncs: SyncRecord[];
  totals: { syncs: number; failedSyncs: number; bytesRead: number; changedBytes: number; fullResyncs: number };
  lastSnapshotAt?: number;
  nextSyncAt: number;
  cutover?: AcceptedCutover;
  warnings: string[];
  /** The worker host holding the volumes, for targets whose volumes are files on a worker (absent: any worker). */
  workerHost?: WorkerHost;
}

/** What the `state` query answers for a warm migration. */
export interface WarmMigrationState extends Partial<WarmCarryOver> {
  migrationId: string;
  kind: 'warm';
  stage: MigrationStage;
  forecast?: SyncForecast;
  shutdown?: ShutdownSourceResult;
  guestInspection?: GuestInspection;
  guestFix?: GuestFixReport;
  instance?: InstanceRef;
  validation?: MigrationValidation;
  lastSyncError?: string;
  error?: string;
  /** Cancel and retry requests, with who made them (this run's). */
  audit?: AuditEntry[];
  /** Disks the full sync copied at once, as admission granted (absent: all at once). */
  copySlots?: number;
  /** Created to be started later, and not started yet (Queued, outside admission's line). */
  awaitingStart?: boolean;
}

export interface CutoverAccepted {
  accepted: true;
  actor: string;
  requestedAt: string;
  at?: string;
  /** The expected downtime at the time of the request (seconds), if enough syncs have run to predict it. */
  predictedFinalSyncSeconds?: number;
}

export const warmMigrationStateQuery = defineQuery<WarmMigrationState>('state');
export const cutoverUpdate = defineUpdate<CutoverAccepted, [CutoverRequest | undefined]>('cutover');
export const cutoverSignal = defineSignal<[CutoverRequest | undefined]>('cutover');
