/**
 * How much does an incremental sync read, compared with what the guest really changed? For each seed a warm
 * migration runs against a simulator VM; between syncs a seeded burst of random writes (some of them zeros) hits the
 * live disk. The bench computes the changed bytes itself, at CBT's block granularity (64 KiB), by comparing the disk
 * before and after each burst, and sums what the incremental syncs read. Each seed then cuts over and the target
 * must equal the source (the correctness loop over many seeds; raise BENCH_SEEDS for a nightly run).
 *
 *   npm run bench:incremental     env: BENCH_SEEDS (3) BENCH_ROUNDS (4) BENCH_WRITES (40) BENCH_DISK_MIB (256)
 * Last line: incremental_read_amplification=<bytes read by incremental syncs / bytes changed at 64 KiB blocks>
 */
import { readFile } from 'node:fs/promises';
import { sha256File } from '../tools/disk-image';
import { cutoverUpdate } from '../workflows/warm-migration-state';
import type { WarmMigrationResult } from '../workflows/warm-migration';
import { randomWrites, seededRandom } from '../test/harness/guest-writer';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../test/harness/warm-migration';
import { envNumber, MiB } from './bench-files';
import { startWarmBenchEnv } from './warm-bench-env';

const CBT_BLOCK = 64 * 1024;

function changedBlockBytes(before: Buffer, after: Buffer): number {
  let changed = 0;
  for (let off = 0; off < before.length; off += CBT_BLOCK) {
    const end = Math.min(off + CBT_BLOCK, before.length);
    if (!before.subarray(off, end).equals(after.subarray(off, end))) changed += end - off;
  }
  return changed;
}

async function main(): Promise<void> {
  const seeds = envNumber('BENCH_SEEDS', 3);
  const rounds = envNumber('BENCH_ROUNDS', 4);
  const writes = envNumber('BENCH_WRITES', 40);
  const diskMiB = envNumber('BENCH_DISK_MIB', 256);
  const vms = Array.from({ length: seeds }, (_, i) => `bench${i + 1}`);
  const bench = await startWarmBenchEnv('bench-incremental', vms, diskMiB);
  const { env } = bench;
  let totalChanged = 0;
  let totalRead = 0;
  let failures = 0;
  try {
    for (const [i, vm] of vms.entries()) {
      const seed = 1000 + i;
      const random = seededRandom(seed);
      const disk = liveDiskFile(env, i);
      const size = diskMiB * MiB;
      const id = `mig-bench-incr-${seed}-${Date.now().toString(36)}`;
      const handle = await startWarmMigration(env, { id, vm, warm: { syncIntervalSeconds: 2 } });
      let state = await waitForWarmState(env, id, (s) => s.stage === 'Ready', 300_000);
      let previous = await readFile(disk);
      let changed = 0;
      let burstEndedAt = 0;
      for (let r = 0; r < rounds; r++) {
        // Right after a sync completes, so the whole burst lands between two snapshots.
        const before = state.totals!.syncs;
        state = await waitForWarmState(env, id, (s) => s.totals!.syncs > before && s.stage === 'Ready', 120_000);
        await randomWrites(disk, size, random, writes);
        burstEndedAt = Date.now();
        const current = await readFile(disk);
        changed += changedBlockBytes(previous, current);
        previous = current;
      }
      state = await waitForWarmState(env, id, (s) => s.stage === 'Ready' && (s.syncs ?? []).some((x) => x.snapshotAt > burstEndedAt), 120_000);
      const read = state.syncs!.filter((s) => s.kind === 'incremental').reduce((sum, s) => sum + s.bytesRead, 0);
      await handle.executeUpdate(cutoverUpdate, { args: [{ actor: 'bench' }] });
      const result = (await handle.result()) as WarmMigrationResult;
      const identical = (await sha256File(env.target.volumePath('proj-warm', `${id}-disk0`))) === (await sha256File(disk));
      if (!identical) failures++;
      totalChanged += changed;
      totalRead += read;
      console.log(
        `seed=${seed} syncs=${result.totals.syncs} changed_bytes=${changed} incremental_bytes_read=${read} ` +
          `amplification=${(read / changed).toFixed(4)} full_resyncs=${result.totals.fullResyncs} target_identical=${identical ? 'yes' : 'NO'}`,
      );
    }
  } finally {
    await bench.close();
  }
  if (failures) {
    console.error(`${failures} seed(s) ended with a target that differs from the source`);
    process.exitCode = 1;
  }
  console.log(`incremental_read_amplification=${(totalRead / totalChanged).toFixed(4)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
