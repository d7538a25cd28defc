/**
 * `npm run lab:temporal-cluster`: a Temporal cluster on this machine (PostgreSQL, history, matching, frontend and
 * worker as separate processes) and the Temporal Web UI, printing TEMPORAL_ADDRESS for workers, the API and the
 * tests, and the Web UI's URL; Ctrl-C stops it.
 */
import path from 'node:path';
import { startTemporalCluster } from './temporal-cluster';

async function main(): Promise<void> {
  const dir = process.env.VMIGRATE_CLUSTER_DIR ?? path.resolve(__dirname, '..', '..', '.tools', 'temporal-cluster', 'lab');
  const started = Date.now();
  const cluster = await startTemporalCluster(dir, { log: (line) => console.log(`[temporal-cluster] ${line}`), webUi: true });
  console.log(`[temporal-cluster] ready in ${((Date.now() - started) / 1000).toFixed(1)} s; logs and data in ${dir}`);
  console.log(`TEMPORAL_ADDRESS=${cluster.address}`);
  console.log(`TEMPORAL_UI_URL=${cluster.webUiUrl}`);
  let stopping = false;
  // A second signal (Ctrl-C twice, or a wrapper forwarding its own) must not cut the stop short: PostgreSQL last.
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('[temporal-cluster] stopping');
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
