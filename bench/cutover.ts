/**
 * Cutover downtime: how long from the accepted cutover to the first byte of the final sync (the overhead vmigrate
 * adds: waking the workflow, shutting the source down, the final snapshot, the changed-block query, opening the
 * export), and how well the workflow predicted the final sync's duration. A seeded guest writes steadily while
 * incremental syncs run; the cutover comes at a random point between two syncs, and the guest stops writing as it is
 * shut down.
 *
 *   npm run bench:cutover      env: BENCH_TRIALS (3) BENCH_DISK_MIB (256) BENCH_SYNC_INTERVAL_S (4) BENCH_SYNCS (4)
 * Output per trial: predicted vs measured final-sync duration; last line: cutover_overhead_s=<median over trials>
 */
import { readWorkflowRecord } from '../api/workflow-history';
import type { SyncDiskResult } from '../activities';
import { sha256File } from '../tools/disk-image';
import type { WarmMigrationResult } from '../workflows/warm-migration';
import { cutoverUpdate } from '../workflows/warm-migration-state';
import { seededRandom, startGuestWriter } from '../test/harness/guest-writer';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../test/harness/warm-migration';
import { envNumber, median, MiB } from './bench-files';
import { startWarmBenchEnv } from './warm-bench-env';

async function main(): Promise<void> {
  const trials = envNumber('BENCH_TRIALS', 3);
  const diskMiB = envNumber('BENCH_DISK_MIB', 256);
  const interval = envNumber('BENCH_SYNC_INTERVAL_S', 4);
  const syncsBefore = envNumber('BENCH_SYNCS', 4);
  const vms = Array.from({ length: trials }, (_, i) => `cut${i + 1}`);
  const bench = await startWarmBenchEnv('bench-cutover', vms, diskMiB);
  const { env } = bench;
  const overheads: number[] = [];
  const errors: number[] = [];
  try {
    for (const [i, vm] of vms.entries()) {
      const random = seededRandom(500 + i);
      const id = `mig-bench-cut-${i + 1}-${Date.now().toString(36)}`;
      const handle = await startWarmMigration(env, { id, vm, warm: { syncIntervalSeconds: interval } });
      await waitForWarmState(env, id, (s) => s.stage === 'Ready', 300_000);
      const writer = startGuestWriter(liveDiskFile(env, i), diskMiB * MiB, 500 + i, { burst: 4, pauseMs: 50, maxLength: 64 * 1024 });
      let accepted;
      try {
        await waitForWarmState(env, id, (s) => s.stage === 'Ready' && s.totals!.syncs > syncsBefore, 300_000);
        // Somewhere between two syncs, so the final sync has a real backlog to carry.
        await new Promise((r) => setTimeout(r, (0.2 + 0.6 * random()) * interval * 1000));
        accepted = await handle.executeUpdate(cutoverUpdate, { args: [{ actor: 'bench' }] });
      } finally {
        await writer.stop(); // the guest is being shut down
      }
      const result = (await handle.result()) as WarmMigrationResult;
      const rec = await readWorkflowRecord(env.client, id);
      const finalSnapshot = rec.activities.filter((a) => a.type === 'createSyncSnapshot' && a.outcome === 'completed').at(-1)!.result as { snapshot: string };
      const finalCopies = rec.activities.filter((a) => a.type === 'syncDisk' && a.outcome === 'completed' && (a.input as { snapshot: string }).snapshot === finalSnapshot.snapshot);
      const firstByteAt = Math.min(...finalCopies.map((a) => (a.result as SyncDiskResult).firstByteAt ?? Infinity));
      const acceptedAt = Date.parse(accepted.requestedAt);
      const overhead = (firstByteAt - acceptedAt) / 1000;
      // Where the overhead goes, from the history's timestamps.
      const shutdown = rec.activities.filter((a) => a.type === 'shutdownSource').at(-1)!;
      const snapshot = rec.activities.filter((a) => a.type === 'createSyncSnapshot').at(-1)!;
      const copyStart = Math.min(...finalCopies.map((a) => a.startedAt ?? Infinity));
      const breakdown =
        `to_shutdown_ms=${shutdown.scheduledAt - acceptedAt} shutdown_ms=${shutdown.endedAt! - shutdown.scheduledAt} ` +
        `snapshot_ms=${snapshot.endedAt! - shutdown.endedAt!} sync_setup_ms=${firstByteAt - copyStart} (sync scheduled after ${copyStart - snapshot.endedAt!} ms)`;
      const measured = result.finalSync.durationMs / 1000;
      const predicted = accepted.predictedFinalSyncSeconds ?? NaN;
      const error = (predicted - measured) / measured;
      const identical = (await sha256File(env.target.volumePath('proj-warm', `${id}-disk0`))) === (await sha256File(liveDiskFile(env, i)));
      overheads.push(overhead);
      errors.push(error);
      console.log(
        `trial=${i + 1} final_sync_changed_bytes=${result.finalSync.changedBytes} predicted_final_sync_s=${predicted.toFixed(2)} ` +
          `measured_final_sync_s=${measured.toFixed(2)} prediction_error=${(error * 100).toFixed(1)}% ` +
          `cutover_overhead_s=${overhead.toFixed(3)} [${breakdown}] target_identical=${identical ? 'yes' : 'NO'}`,
      );
    }
  } finally {
    await bench.close();
  }
  console.log(`median_prediction_error=${(median(errors) * 100).toFixed(1)}% (goal within ±20 %)`);
  console.log(`cutover_overhead_s=${median(overheads).toFixed(3)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
