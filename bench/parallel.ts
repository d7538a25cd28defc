/**
 * Many disks at once, as a worker migrating several VMs sees it: 8 disks of 256 MiB, each served by its own nbdkit
 * (file plugin, read-only, Unix socket), copied concurrently by the engine in one process (with its verification)
 * and by 8 concurrent `nbdcopy --flush` processes; alternating runs, medians. The engine side runs in a fresh child
 * process so its peak RSS is that of the copies alone; per disk = peak / disks (the process's baseline included).
 *
 *   npx tsx bench/parallel.ts    env: BENCH_DISKS (8) BENCH_DISK_MIB (256) BENCH_RUNS (3) BENCH_DIR (os tmpdir)
 *                                     and the engine tuning of bench/copy.ts
 * Last line: parallel_vs_nbdcopy=<engine's aggregate throughput / nbdcopy's>
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startNbdkit, type NbdkitProcess } from '../nbd/nbdkit';
import { sha256File } from '../tools/disk-image';
import { envNumber, median, MiB, writeRandomFile } from './bench-files';

const run = promisify(execFile);

async function main(): Promise<void> {
  const disks = envNumber('BENCH_DISKS', 8);
  const size = envNumber('BENCH_DISK_MIB', 256) * MiB;
  const runs = envNumber('BENCH_RUNS', 3);
  const dir = await mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'vmigrate-bench-parallel-'));
  const servers: NbdkitProcess[] = [];
  try {
    const sources = Array.from({ length: disks }, (_, i) => path.join(dir, `source-${i}.img`));
    for (const source of sources) await writeRandomFile(source, size);
    for (const source of sources) servers.push(await startNbdkit({ plugin: 'file', params: { file: source }, readOnly: true, socketDir: dir }));
    console.log(`${disks} sources of ${size / MiB} MiB (random data) in ${dir}`);

    const nbdcopyMs: number[] = [];
    const engine: Array<{ ms: number; peakRss: number; baselineRss: number }> = [];
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? ['nbdcopy', 'engine'] : ['engine', 'nbdcopy'];
      for (const who of order) {
        if (who === 'nbdcopy') {
          await Promise.all(servers.map((_, d) => rm(path.join(dir, `nbdcopy-${d}.img`), { force: true })));
          const t0 = performance.now();
          await Promise.all(servers.map((s, d) => run('nbdcopy', ['--flush', s.uri, path.join(dir, `nbdcopy-${d}.img`)])));
          nbdcopyMs.push(performance.now() - t0);
        } else {
          const child = await run(process.execPath, ['--import', 'tsx', path.join(__dirname, 'parallel-engine-copies.ts'), dir, ...servers.map((s) => s.socketPath)], {
            env: process.env,
            maxBuffer: 1024 * 1024,
          });
          engine.push(JSON.parse(child.stdout.trim().split('\n').pop() as string));
        }
      }
      const e = engine[engine.length - 1];
      console.log(
        `run ${i + 1}: ${disks} × nbdcopy ${mibps(disks * size, nbdcopyMs[i])} MiB/s | engine ${mibps(disks * size, e.ms)} MiB/s, ` +
          `peak RSS ${(e.peakRss / MiB).toFixed(0)} MiB (${(e.peakRss / MiB / disks).toFixed(1)} MiB per disk)`,
      );
    }
    for (let d = 0; d < disks; d++) {
      const [want, a, b] = await Promise.all([sources[d], path.join(dir, `nbdcopy-${d}.img`), path.join(dir, `engine-${d}.img`)].map(sha256File));
      if (a !== want || b !== want) throw new Error(`disk ${d}: output differs from its source`);
    }
    console.log(`sha256 ok (all ${2 * disks} outputs equal their sources)`);
    const n = median(nbdcopyMs);
    const e = median(engine.map((r) => r.ms));
    const peak = Math.max(...engine.map((r) => r.peakRss));
    console.log(`nbdcopy ×${disks}:           ${mibps(disks * size, n)} MiB/s aggregate (median of ${runs})`);
    console.log(`engine, ${disks} at once:   ${mibps(disks * size, e)} MiB/s aggregate, copy + verification`);
    console.log(`peak RSS: ${(peak / MiB).toFixed(0)} MiB for ${disks} copies = ${(peak / MiB / disks).toFixed(1)} MiB per disk (process baseline ${(engine[0].baselineRss / MiB).toFixed(0)} MiB included)`);
    console.log(`peak_rss_per_disk_mib=${(peak / MiB / disks).toFixed(1)}`);
    console.log(`parallel_vs_nbdcopy=${(n / e).toFixed(3)}`);
  } finally {
    for (const s of servers) await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function mibps(bytes: number, ms: number): string {
  return (bytes / MiB / (ms / 1000)).toFixed(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
