/** The product's cold-migration lifecycle, in order, plus the two terminal states a job can also end in. */
export const COLD_STAGES = ['Queued', 'Export', 'Inspect', 'WriteVolume', 'GuestFixes', 'Finalize', 'Completed'] as const;
export type ColdStage = (typeof COLD_STAGES)[number];
/** Warm migration's stages: a full sync, then Ready (with periodic incremental syncs) until cutover. */
export const WARM_STAGES = ['Queued', 'FullSync', 'Ready', 'Syncing', 'CuttingOver', 'GuestFixes', 'Finalize', 'Completed'] as const;
export type WarmStage = (typeof WARM_STAGES)[number];
export type MigrationStage = ColdStage | WarmStage | 'Failed' | 'Cancelled';

/** The product's event names (its documented event stream), plus how a job can end other than completing. */
export const MIGRATION_EVENTS = [
  'source.powered_off',
  'export.started',
  'export.progress',
  'write.started',
  'write.progress',
  'guest_fixes.started',
  'finalize.completed',
  'migration.completed',
  'migration.failed',
  'migration.cancelled',
  // Warm migration
  'cbt.enabled',
  'snapshot.created',
  'sync.progress',
  'snapshot.removed',
  'cutover.requested',
  // Guest inspection (Inspect stage; warm: at cutover) and the optional boot check after Finalize
  'inspect.completed',
  'validation.boot_check',
  // The service: who submitted, when admission let the migration start (after its wait in Queued), who cancelled
  'migration.submitted',
  'migration.admitted',
  'cancel.requested',
  'migration.retried',
  'replication.started',
] as const;
export type MigrationEventName = (typeof MIGRATION_EVENTS)[number];

/** Workflow types that are migrations (other workflows share the namespace: admission, source reads). */
export const MIGRATION_WORKFLOW_TYPES = ['coldMigration', 'warmMigration', 'agentMigration'];
