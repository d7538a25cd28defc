import type { ActivityDeps } from './activity-deps';
import { createAdmissionActivities } from './admission-activities';
import { createDiskActivities } from './disk-activities';
import { createGuestActivities } from './guest-activities';
import { createInstanceActivities } from './instance-activities';
import { InventoryCache } from '../source/inventory-cache';
import { createPreflightActivities } from './preflight-activities';
import { createSourceActivities } from './source-activities';
import { createSyncActivities } from './sync-activities';
import { createTargetActivities } from './target-activities';
import { createVmActivities } from './vm-activities';

export type { ActivityDeps, GuestToolHooks } from './activity-deps';
export type { SourceVmPlan, PowerOffResult } from './vm-activities';
export type { ExportSessionReport, SourceInspection, ExportDiskInput, ExportDiskProgress, ExportDiskResult } from './disk-activities';
export type { ChangeTrackingReport, SyncSnapshot, SyncMode, SyncDiskInput, SyncDiskProgress, SyncDiskResult, ShutdownSourceResult } from './sync-activities';
export type { FinalizeInput } from './target-activities';
export type { SourceCheck, SourceVmsPage, SourceVmsRequest } from './source-activities';
export type { GuestFixInput, GuestFixReport, GuestInspection, BootCheckInput, BootCheckReport } from './guest-activities';

/** Every activity a vmigrate worker registers, built from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  // One inventory cache per worker, shared by the inventory pages and preflight.
  const inventory = new InventoryCache();
  return {
    ...createVmActivities(deps),
    ...createDiskActivities(deps),
    ...createSyncActivities(deps),
    ...createTargetActivities(deps),
    ...createGuestActivities(deps),
    ...createInstanceActivities(deps),
    ...createAdmissionActivities(deps),
    ...createSourceActivities(deps, inventory),
    ...createPreflightActivities(deps, inventory),
  };
}

export type VmigrateActivities = ReturnType<typeof createActivities>;
