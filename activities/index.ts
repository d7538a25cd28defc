import type { ActivityDeps } from './activity-deps';
import { createAdmissionActivities } from './admission-activities';
import { createAgentActivities } from './agent-activities';
import { createDiskActivities } from './disk-activities';
import { createGuestActivities } from './guest-activities';
import { createInstanceActivities } from './instance-activities';
import { createLiveActivities } from './live-activities';
import { countedCopy } from '../metrics/copy-metrics';
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
export type { AgentDiskProgress, AgentDiskResult } from './agent-activities';
export type { LiveCheck, LiveProgress } from './live-activities';
export type { SourceCheck, SourceVmsPage, SourceVmsRequest } from './source-activities';
export type { GuestFixInput, GuestFixReport, GuestInspection, BootCheckInput, BootCheckReport } from './guest-activities';

/** Every activity a vmigrate worker registers, built from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  // One inventory cache per worker, shared by the inventory pages and preflight.
  const inventory = new InventoryCache();
  const disk = createDiskActivities(deps);
  const sync = createSyncActivities(deps);
  return {
    ...createVmActivities(deps),
    ...disk,
    // Counted as they complete, once per disk (metrics/copy-metrics.ts).
    exportDisk: (input: Parameters<typeof disk.exportDisk>[0]) => countedCopy('copy', (r) => r.bytesTotal, () => disk.exportDisk(input), { reused: (r) => r.reused === true }),
    ...sync,
    syncDisk: (input: Parameters<typeof sync.syncDisk>[0]) => countedCopy('sync', (r) => r.areaBytes, () => sync.syncDisk(input), { syncMode: (r) => r.mode }),
    ...createAgentActivities(deps),
    ...createTargetActivities(deps),
    ...createGuestActivities(deps),
    ...createInstanceActivities(deps),
    ...createAdmissionActivities(deps),
    ...createLiveActivities(deps),
    ...createSourceActivities(deps, inventory),
    ...createPreflightActivities(deps, inventory),
  };
}

export type VmigrateActivities = ReturnType<typeof createActivities>;
