/**
 * What the copy engine did, as Prometheus metrics of the process that ran it (a worker; in `npm start`, the one
 * process). Counted when a disk copy or sync completes, from its result, so a finished migration's bytes are counted
 * exactly once however many attempts it took.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const processRegistry = new Registry();

const MiB = 2 ** 20;

export const copyMetrics = {
  diskBytesMigrated: new Counter({
    name: 'vmigrate_disk_bytes_migrated_total',
    help: 'Bytes of disks copied and verified into target volumes (a disk copy counts its size; a sync the bytes CBT reported changed)',
    labelNames: ['kind'],
    registers: [processRegistry],
  }),
  sourceBytesRead: new Counter({
    name: 'vmigrate_source_bytes_read_total',
    help: 'Bytes read from sources by the attempts that completed a disk copy or sync (holes are not read)',
    labelNames: ['kind'],
    registers: [processRegistry],
  }),
  targetBytesWritten: new Counter({
    name: 'vmigrate_target_bytes_written_total',
    help: 'Bytes written to target volumes by the attempts that completed a disk copy or sync',
    labelNames: ['kind'],
    registers: [processRegistry],
  }),
  copyRate: new Histogram({
    name: 'vmigrate_copy_throughput_bytes_per_second',
    help: 'Copy throughput of each completed disk copy or sync: its bytes over its duration',
    labelNames: ['kind'],
    buckets: [1, 4, 16, 64, 128, 256, 512, 1024, 2048].map((m) => m * MiB),
    registers: [processRegistry],
  }),
  syncDuration: new Histogram({
    name: 'vmigrate_sync_duration_seconds',
    help: 'Duration of each completed warm-migration disk sync',
    labelNames: ['mode'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600],
    registers: [processRegistry],
  }),
  copiesInProgress: new Gauge({
    name: 'vmigrate_copies_in_progress',
    help: 'Disk copies and syncs running in this process now',
    labelNames: ['kind'],
    registers: [processRegistry],
  }),
};

/** A disk copy (`copy`) or sync (`sync`) from its start to its result; the result's numbers are counted. */
export async function countedCopy<T extends { bytesRead: number; bytesWritten: number; durationMs: number }>(
  kind: 'copy' | 'sync',
  bytesOf: (r: T) => number,
  body: () => Promise<T>,
  opts: { syncMode?: (r: T) => string; reused?: (r: T) => boolean } = {},
): Promise<T> {
  copyMetrics.copiesInProgress.inc({ kind });
  try {
    const r = await body();
    if (!opts.reused?.(r)) {
      const bytes = bytesOf(r);
      copyMetrics.diskBytesMigrated.inc({ kind }, bytes);
      copyMetrics.sourceBytesRead.inc({ kind }, r.bytesRead);
      copyMetrics.targetBytesWritten.inc({ kind }, r.bytesWritten);
      if (r.durationMs > 0) copyMetrics.copyRate.observe({ kind }, bytes / (r.durationMs / 1000));
      if (kind === 'sync') copyMetrics.syncDuration.observe({ mode: opts.syncMode?.(r) ?? 'incremental' }, r.durationMs / 1000);
    }
    return r;
  } finally {
    copyMetrics.copiesInProgress.dec({ kind });
  }
}
