/**
 * Sync statistics → the dirty rate and the predicted duration of the final sync (the expected cutover downtime).
 * Pure functions of the recorded syncs, so they run in workflow code (deterministic) and in tests alike.
 *
 * Model: a sync takes a fixed overhead (snapshot, query, opening the export) plus the bytes it reads divided by the
 * copy throughput; the bytes the final sync will read are what the guest dirtied since the last snapshot, at the
 * recent dirty rate.
 */

export interface SyncRecord {
  n: number;
  kind: 'full' | 'incremental' | 'final';
  /** Epoch ms when the sync's snapshot was requested. */
  snapshotAt: number;
  /** Epoch ms of the previous completed sync's snapshot (what the changes are counted since). */
  sinceSnapshotAt?: number;
  /** Snapshot requested → every disk copied. */
  durationMs: number;
  /** Time spent copying (max over the disks, which copy in parallel). */
  copyMs: number;
  /** Bytes CBT reported (changed since the previous sync, or allocated for full syncs). */
  changedBytes: number;
  bytesRead: number;
  /** Disks that had to be synced in full, and why. */
  fullSyncReasons: string[];
  actor?: string;
}

export interface SyncForecast {
  dirtyBytesPerSecond: number;
  copyBytesPerSecond: number;
  overheadMs: number;
  /** Bytes a final sync started at `at` would read. */
  expectedChangedBytes: number;
  predictedFinalSyncMs: number;
  /** When the prediction is for (epoch ms). */
  at: number;
  /** How many syncs it rests on. */
  basis: number;
}

/** Recent incremental syncs weigh in; older ones describe a workload that may have changed. */
const WINDOW = 5;

export function forecastFinalSync(syncs: SyncRecord[], lastSnapshotAt: number | undefined, at: number): SyncForecast | undefined {
  const incremental = syncs.filter((s) => s.kind !== 'full' && s.sinceSnapshotAt !== undefined).slice(-WINDOW);
  // Throughput from syncs like the final one (scattered changed areas); a full sync's long runs copy faster.
  const copied = syncs.filter((s) => s.bytesRead > 0 && s.copyMs > 0);
  const alike = copied.filter((s) => s.kind !== 'full');
  const copying = (alike.length ? alike : copied).slice(-WINDOW);
  if (!incremental.length || lastSnapshotAt === undefined) return undefined;

  const changed = incremental.reduce((sum, s) => sum + s.changedBytes, 0);
  const elapsed = incremental.reduce((sum, s) => sum + (s.snapshotAt - s.sinceSnapshotAt!), 0);
  const dirtyBytesPerSecond = elapsed > 0 ? (changed * 1000) / elapsed : 0;
  const read = copying.reduce((sum, s) => sum + s.bytesRead, 0);
  const copyTime = copying.reduce((sum, s) => sum + s.copyMs, 0);
  const copyBytesPerSecond = copyTime > 0 ? (read * 1000) / copyTime : 0;

  // Overhead: what each recent sync took beyond its bytes at the measured throughput; the median resists outliers.
  const overheads = incremental
    .map((s) => Math.max(0, s.durationMs - (copyBytesPerSecond > 0 ? (s.bytesRead * 1000) / copyBytesPerSecond : 0)))
    .sort((a, b) => a - b);
  const overheadMs = overheads[Math.floor(overheads.length / 2)];

  const expectedChangedBytes = Math.round((dirtyBytesPerSecond * Math.max(0, at - lastSnapshotAt)) / 1000);
  const predictedFinalSyncMs = Math.round(overheadMs + (copyBytesPerSecond > 0 ? (expectedChangedBytes * 1000) / copyBytesPerSecond : 0));
  return { dirtyBytesPerSecond, copyBytesPerSecond, overheadMs, expectedChangedBytes, predictedFinalSyncMs, at, basis: incremental.length };
}
