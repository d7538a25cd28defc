import { defineQuery } from '@temporalio/workflow';
import type { LiveMigrationRecord } from '../targets/openstack/nova-live-migrations';
import type { LiveProgress } from '../live/nova-live-migration-run';

/** The stages of a live migration, in order (Failed and Cancelled end it from any of them). */
export type LiveMigrationStage = 'Queued' | 'Checks' | 'Migrating' | 'Verify' | 'Completed' | 'Failed' | 'Cancelled';

export interface LiveMigrationState {
  operationId: string;
  kind: 'live';
  stage: LiveMigrationStage;
  /** Every stage entered, in order, with when (workflow time). */
  stages: Array<{ stage: LiveMigrationStage; at: string }>;
  serverId: string;
  serverName?: string;
  source?: string;
  /** Where the checks said it can go (a named destination, or the scheduler's candidates). */
  candidates?: string[];
  mode?: 'live' | 'block';
  record?: LiveMigrationRecord;
  destination?: string;
  error?: string;
  /** The last progress the watch reported is in its heartbeat (the API reads it from the pending activity). */
  lastProgress?: LiveProgress;
}

export const liveMigrationStateQuery = defineQuery<LiveMigrationState>('liveState');
