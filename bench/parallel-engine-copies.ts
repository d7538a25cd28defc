/**
 * Child process of bench/parallel.ts: copies N disks at once through the engine, each from its own NBD socket to
 * its own sparse file, and prints one JSON line: wall time and the process's peak RSS (a fresh process, so the
 * figure is what a worker doing only these copies would need).
 *
 *   node --import tsx bench/parallel-engine-copies.ts <outDir> <socket>...   env as bench/copy.ts
 */
import * as path from 'node:path';
import { engineTuningFromEnv, runEngineCopy } from './run-engine-copy';

async function main(): Promise<void> {
  const [outDir, ...sockets] = process.argv.slice(2);
  const tuning = engineTuningFromEnv();
  const baselineRss = process.memoryUsage().rss;
  const started = performance.now();
  const runs = await Promise.all(
    sockets.map((socket, i) => runEngineCopy(socket, path.join(outDir, `engine-${i}.img`), path.join(outDir, `engine-${i}.digests`), tuning)),
  );
  const ms = performance.now() - started;
  if (runs.some((r) => !r.result.verification.match)) throw new Error('a copy did not verify');
  // maxRSS is in KiB.
  process.stdout.write(`${JSON.stringify({ ms, peakRss: process.resourceUsage().maxRSS * 1024, baselineRss })}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
