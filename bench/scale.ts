/**
 * Scale: N warm migrations idle in Ready on one worker process, submitted through the API and its admission. What
 * one idle migration costs the worker (resident memory), and how fast GET /migrations answers with N running.
 *
 *   npm run bench:scale      env: BENCH_MIGRATIONS (200) BENCH_LIST_SAMPLES (200)
 * Last lines: scale_rss_mib_per_migration=<(RSS with N Ready − RSS with one Ready) / N>
 *             scale_list_p99_ms=<p99 of GET /migrations?limit=1000 with N running>
 */
import { readFileSync } from 'node:fs';
import { startDevServer, type DevServer } from '../tools/temporal-dev-server';
import { startApi } from '../test/harness/api-server';
import { createMigrationEnv } from '../test/harness/migration-env';
import { spawnWorker } from '../test/harness/worker-process';
import { submitBatch, waitForStage } from './api-batches';
import { envNumber } from './bench-files';

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) / 1024;
}

async function main(): Promise<void> {
  const n = envNumber('BENCH_MIGRATIONS', 200);
  const samples = envNumber('BENCH_LIST_SAMPLES', 200);
  let server: DevServer | undefined;
  if (process.env.TEMPORAL_ADDRESS) process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS;
  else {
    server = await startDevServer({ logLevel: 'error' });
    process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = server.address;
  }
  const names = Array.from({ length: n + 1 }, (_, i) => `scale${String(i).padStart(4, '0')}`);
  const env = await createMigrationEnv('bench-scale', {
    vms: names.map((name) => ({ name, guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 512, powerState: 'poweredOn', disks: [{ capacityMiB: 1 }], nics: [] })),
  });
  const worker = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue, role: 'all' });
  const api = await startApi(env);
  const submit = (vms: string[]) =>
    submitBatch(
      api.http,
      {
        kind: 'warm',
        warm: { syncIntervalSeconds: 24 * 3600 },
        sourceId: 'sim',
        target: { project: 'p-scale', flavor: 'm1.small', volumeType: 'standard', networks: [] },
        guest: { convert: 'skip' },
      },
      vms,
    );
  const ready = (count: number, timeoutMs: number) =>
    waitForStage(api.http, 'Ready', count, { timeoutMs, pollMs: 1000, context: () => `worker: ${worker.output().slice(-2000)}` });
  const ids: string[] = [];
  try {
    // One migration first, so the baseline already holds the workflow bundle and every code path an idle one uses.
    ids.push(...(await submit([names[0]])));
    await ready(1, 300_000);
    await new Promise((r) => setTimeout(r, 3000));
    const base = rssMiB(worker.child.pid!);
    const started = Date.now();
    for (let i = 1; i <= n; i += 100) ids.push(...(await submit(names.slice(i, Math.min(n + 1, i + 100)))));
    await ready(n + 1, 30 * 60_000);
    const readySeconds = (Date.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 5000));
    const loaded = rssMiB(worker.child.pid!);

    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = process.hrtime.bigint();
      const res = await api.http.get('/migrations', { params: { limit: 1000 } });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.status !== 200 || res.data.migrations.length < n + 1) throw new Error(`GET /migrations answered ${res.status} with ${res.data.migrations?.length} migrations`);
    }
    times.sort((a, b) => a - b);
    const p99 = times[Math.min(times.length - 1, Math.ceil(times.length * 0.99) - 1)];
    console.log(`scale_migrations=${n}`);
    console.log(`scale_ready_seconds=${readySeconds.toFixed(1)}`);
    console.log(`scale_worker_rss_mib_one=${base.toFixed(1)} scale_worker_rss_mib_all=${loaded.toFixed(1)}`);
    console.log(`scale_list_p50_ms=${times[Math.floor(times.length / 2)].toFixed(1)}`);
    console.log(`scale_rss_mib_per_migration=${((loaded - base) / n).toFixed(3)}`);
    console.log(`scale_list_p99_ms=${p99.toFixed(1)}`);
  } finally {
    await Promise.all(ids.map((id) => env.client.workflow.getHandle(id).terminate('bench done').catch(() => undefined)));
    await api.close();
    await worker.kill('SIGTERM');
    await env.close();
    await server?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
