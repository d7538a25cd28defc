/**
 * Observability against the real API, dev server, worker and simulator: /metrics is valid Prometheus text and
 * counts a finished migration's bytes exactly; a worker process serves its own copy metrics and the Temporal SDK's
 * metrics; log lines carry the migration id.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { spawnWorker } from '../harness/worker-process';
import { logFieldsOf } from '../../workers/worker-runtime';

const MiB = 1024 * 1024;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format strictly: every line is a comment, HELP/TYPE, or a sample of a declared metric. */
function parseProm(text: string): Sample[] {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(m[3]);
        types.set(m[2], m[3]);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]) && !types.has(family)) throw new Error(`sample ${m[1]} has no TYPE line`);
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('metrics and logs', () => {
  let env: MigrationEnv;
  let api: TestApi;
  const apiLines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    env = await createMigrationEnv(
      'metrics',
      {
        vms: [
          { name: 'met-1', guestId: 'debian12_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff', disks: [{ capacityMiB: 48 }, { capacityMiB: 16 }], nics: [] },
          { name: 'met-warm', guestId: 'debian12_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: 16 }], nics: [] },
        ],
      },
      { diskImages: { 'met-1': 24 * MiB, 'met-warm': 8 * MiB } },
    );
    await env.startWorker();
    const sink = new Writable({ write: (chunk, _enc, done) => (apiLines.push(JSON.parse(chunk.toString())), done()) });
    api = await startApi(env, { users: [{ name: 'viewer', projects: ['p-met'], role: 'reader' }], logger: pino({ level: 'info' }, sink) });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('serves valid Prometheus text that counts a finished migration’s bytes exactly', async () => {
    const before = parseProm((await api.http.get('/metrics', { responseType: 'text' })).data);
    const submit = await api.http.post('/migrations', { sourceId: 'sim', vm: { name: 'met-1' }, target: { project: 'p-met', volumeType: 'standard', networks: [] }, guest: { convert: 'skip' } });
    expect(submit.status).toBe(202);
    const status = await waitForMigration(api.http, submit.data.id, { timeoutMs: 120_000 });
    expect(status.status).toBe('COMPLETED');

    const res = await api.http.get('/metrics', { responseType: 'text' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const after = parseProm(res.data);
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(delta('vmigrate_disk_bytes_migrated_total', { kind: 'copy' })).toBe(64 * MiB);
    const read = (status.disks as Array<{ bytesRead: number }>).reduce((n, d) => n + d.bytesRead, 0);
    expect(read).toBeGreaterThan(0);
    expect(delta('vmigrate_source_bytes_read_total', { kind: 'copy' })).toBe(read);
    expect(delta('vmigrate_copy_throughput_bytes_per_second_count', { kind: 'copy' })).toBe(2);
    expect(value(after, 'vmigrate_copies_in_progress', { kind: 'copy' })).toBe(0);
    expect(value(after, 'vmigrate_migrations_closed', { status: 'completed' })).toBe(1);
    expect(value(after, 'vmigrate_migrations_running')).toBe(0);
    expect(value(after, 'vmigrate_admission_queue_length')).toBe(0);

    // Only admins see the deployment's numbers.
    expect((await api.as('viewer').get('/metrics')).status).toBe(403);
    // The API's log lines about the migration carry its id.
    const about = apiLines.filter((l) => typeof l.path === 'string' && (l.path as string).startsWith(`/migrations/${submit.data.id}`));
    expect(about.length).toBeGreaterThan(0);
    expect(about.every((l) => l.migrationId === submit.data.id)).toBe(true);
  }, 180_000);

  it('shows a running warm migration by its stage, its syncs, and its predicted downtime', async () => {
    const submit = await api.http.post('/migrations', { kind: 'warm', warm: { syncIntervalSeconds: 1 }, sourceId: 'sim', vm: { name: 'met-warm' }, target: { project: 'p-met', volumeType: 'standard', networks: [] }, guest: { convert: 'skip' } });
    expect(submit.status).toBe(202);
    const id = submit.data.id as string;
    try {
      // Ready, with a forecast (it rests on the syncs so far).
      const status = await waitForMigration(api.http, id, { timeoutMs: 120_000, done: (s) => s.warm?.forecast !== undefined && s.warm.totals.syncs >= 2 });
      expect(status.status).toBe('RUNNING');
      const samples = parseProm((await api.http.get('/metrics', { responseType: 'text' })).data);
      expect(value(samples, 'vmigrate_migrations_running', { kind: 'warm' })).toBe(1);
      expect(['Ready', 'Syncing']).toContain(samples.find((x) => x.name === 'vmigrate_migrations_running' && x.labels.kind === 'warm')!.labels.stage);
      const downtime = samples.filter((x) => x.name === 'vmigrate_predicted_downtime_seconds' && x.labels.migration === id);
      expect(downtime).toHaveLength(1);
      expect(downtime[0].value).toBeGreaterThanOrEqual(0);
      expect(value(samples, 'vmigrate_sync_duration_seconds_count')).toBeGreaterThanOrEqual(2);
      expect(value(samples, 'vmigrate_disk_bytes_migrated_total', { kind: 'sync' })).toBeGreaterThan(0);
    } finally {
      await api.http.post(`/migrations/${id}/cancel`, {});
      await waitForMigration(api.http, id, { timeoutMs: 60_000 });
    }
  }, 180_000);

  it('a worker process serves its copy metrics and the Temporal SDK’s own', async () => {
    const [own, sdk] = [await freePort(), await freePort()];
    const worker = spawnWorker({ configFile: env.configFile, taskQueue: `${env.taskQueue}-metrics`, role: 'all', extraEnv: { VMIGRATE_METRICS_ADDRESS: `127.0.0.1:${own}`, VMIGRATE_SDK_METRICS_ADDRESS: `127.0.0.1:${sdk}` } });
    try {
      const scrape = async (port: number) => {
        for (let i = 0; i < 200; i++) {
          try {
            const r = await fetch(`http://127.0.0.1:${port}/metrics`);
            const text = await r.text();
            if (r.ok && text.includes('\n')) return text;
          } catch {
            // not listening yet
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`nothing served on port ${port}; worker output: ${worker.output()}`);
      };
      const mine = await scrape(own);
      parseProm(mine);
      expect(mine).toMatch(/^# TYPE vmigrate_copies_in_progress gauge$/m);
      expect(mine).toMatch(/^# TYPE vmigrate_disk_bytes_migrated_total counter$/m);
      let sdkText = await scrape(sdk);
      for (let i = 0; i < 40 && !/temporal_num_pollers|temporal_worker_task_slots_available/.test(sdkText); i++) {
        await new Promise((r) => setTimeout(r, 250));
        sdkText = await scrape(sdk);
      }
      expect(sdkText).toMatch(/^temporal_(num_pollers|worker_task_slots_available)\{[^}]*task_queue="[^"]*-metrics"/m);
    } finally {
      await worker.kill('SIGTERM');
    }
  }, 120_000);

  it('puts the migration id on the SDK log lines of a migration’s workflow and activities', () => {
    expect(logFieldsOf({ workflowId: 'mig-1234', workflowType: 'coldMigration', activityType: 'exportDisk' })).toMatchObject({ migrationId: 'mig-1234', activityType: 'exportDisk' });
    expect(logFieldsOf({ workflowId: 'admission-q', workflowType: 'admission' }).migrationId).toBeUndefined();
  });
});
