import { defineQuery } from '@temporalio/workflow';
import type { ExportSessionReport, GuestFixReport, SourceInspection } from '../activities';
import type { InstanceRef } from '../target/target-driver';
import type { MigrationStage } from '../shared/migration-stages';

/** The workflow's own view of a cold migration, answered by the `state` query. */
export interface ColdMigrationState {
  migrationId: string;
  kind: 'cold';
  stage: MigrationStage;
  sourceVm?: { moref: string; name: string };
  sourcePowerStateBefore?: string;
  export?: ExportSessionReport;
  inspection?: SourceInspection;
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
  instance?: InstanceRef;
  warnings: string[];
  error?: string;
}

export const coldMigrationStateQuery = defineQuery<ColdMigrationState>('state');
