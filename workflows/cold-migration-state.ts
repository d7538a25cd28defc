import type { WorkerHost } from '../shared/task-queues';
import { defineQuery } from '@temporalio/workflow';
import type { BootCheckReport, ExportSessionReport, GuestFixReport, GuestInspection, SourceInspection } from '../activities';
import type { InstanceRef } from '../targets/target-provider';
import type { MigrationStage } from '../shared/migration-stages';
import type { AuditEntry } from './migration-audit';

/** The workflow's own view of a cold migration, answered by the `state` query. */
export interface ColdMigrationState {
  migrationId: string;
  kind: 'cold';
  stage: MigrationStage;
  sourceVm?: { moref: string; name: string };
  sourcePowerStateBefore?: string;
  export?: ExportSessionReport;
  inspection?: SourceInspection;
  /** What libguestfs found on the source disks (Inspect stage; absent when conversion is skipped or in old runs). */
  guestInspection?: GuestInspection;
  disks: Array<{
    key: number;
    label: string;
    capacityBytes: number;
    /** Durable bytes as of the last completed activity (live progress comes from heartbeats). */
    bytesDone: number;
    volume?: string;
    verification?: { algorithm: string; source: string; target: string; match: boolean };
  }>;
  guestFix?: GuestFixReport;
  /** Checks run on the finished instance, when the migration asked for them. */
  validation?: MigrationValidation;
  instance?: InstanceRef;
  warnings: string[];
  error?: string;
  /** Cancel and retry requests, with who made them. */
  audit?: AuditEntry[];
  /** Disks copied at once, as admission granted (absent: all at once). */
  copySlots?: number;
  /** Created to be started later, and not started yet (Queued, outside admission's line). */
  awaitingStart?: boolean;
  /** The worker host holding the volumes, for targets whose volumes are files on a worker (absent: any worker). */
  workerHost?: WorkerHost;
}

export interface MigrationValidation {
  /** The boot check's report, or why it could not run. */
  bootCheck?: BootCheckReport | { passed: false; reason: string };
}

export const coldMigrationStateQuery = defineQuery<ColdMigrationState>('state');
