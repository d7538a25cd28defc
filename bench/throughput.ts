/**
 * Throughput: how many small cold migrations per minute one worker process sustains, submitted through the API (and
 * its admission) at once, from the submission to the last one Completed. Side by side in one run: on the Temporal dev
 * server (one process, SQLite) and on the cluster lab (PostgreSQL, history, matching, frontend and worker apart).
 *
 *   npm run bench:throughput      env: BENCH_MIGRATIONS (40) BENCH_DISK_MIB (4)
 * Last lines: cluster_vs_dev_server=<cluster rate / dev server rate>
 *             migrations_per_min=<on the cluster>
 */
import { startDevServer } from '../tools/temporal-dev-server';
import { startApi } from '../test/harness/api-server';
import { createMigrationEnv } from '../test/harness/migration-env';
import { startTestCluster } from '../test/harness/temporal-cluster';
import { spawnWorker } from '../test/harness/worker-process';
import { submitBatch, waitForStage } from './api-batches';
import { envNumber } from './bench-files';

interface Backend {
  name: string;
  start(): Promise<{ address: string; stop(): Promise<void> }>;
}

const BACKENDS: Backend[] = [
  { name: 'dev_server', start: () => startDevServer({ logLevel: 'error' }) },
  { name: 'cluster', start: () => startTestCluster('bench-throughput') },
];

/** Migrations per minute on one backend: N cold migrations of N VMs, one worker process. */
async function migrationsPerMinute(backend: Backend, n: number, diskMiB: number): Promise<number> {
  const server = await backend.start();
  process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = server.address;
  try {
    const names = Array.from({ length: n }, (_, i) => `tp${String(i).padStart(4, '0')}`);
    const env = await createMigrationEnv(`bench-throughput-${backend.name}`, {
      vms: names.map((name) => ({ name, guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 512, powerState: 'poweredOff', disks: [{ capacityMiB: diskMiB }], nics: [] })),
    });
    const worker = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue, role: 'all' });
    const api = await startApi(env);
    try {
      const submit = (vms: string[]) =>
        submitBatch(api.http, { kind: 'cold', sourceId: 'sim', target: { project: 'p-throughput', flavor: 'm1.small', volumeType: 'standard', networks: [] }, guest: { convert: 'skip' } }, vms);
      const completed = (count: number, timeoutMs: number) =>
        waitForStage(api.http, 'Completed', count, {
          timeoutMs,
          pollMs: 250,
          check: async () => {
            const failed = (await api.http.get('/migrations', { params: { state: 'Failed', limit: 1 } })).data.migrations?.length ?? 0;
            if (failed > 0) throw new Error(`a migration failed on ${backend.name}; worker: ${worker.output().slice(-2000)}`);
          },
        });
      // One migration first: the worker has bundled its workflows and warmed every code path before the clock starts.
      await submit([names[0]]);
      await completed(1, 300_000);
      const started = Date.now();
      await submit(names.slice(1));
      await completed(n, 30 * 60_000);
      const minutes = (Date.now() - started) / 60_000;
      const rate = (n - 1) / minutes;
      console.log(`${backend.name}: ${n - 1} migrations of ${diskMiB} MiB in ${(minutes * 60).toFixed(1)} s`);
      console.log(`${backend.name}_migrations_per_min=${rate.toFixed(1)}`);
      return rate;
    } finally {
      await api.close();
      await worker.kill('SIGTERM');
      await env.close();
    }
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const n = envNumber('BENCH_MIGRATIONS', 40) + 1;
  const diskMiB = envNumber('BENCH_DISK_MIB', 4);
  const [dev, cluster] = [await migrationsPerMinute(BACKENDS[0], n, diskMiB), await migrationsPerMinute(BACKENDS[1], n, diskMiB)];
  console.log(`cluster_vs_dev_server=${(cluster / dev).toFixed(2)}`);
  console.log(`migrations_per_min=${cluster.toFixed(1)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
