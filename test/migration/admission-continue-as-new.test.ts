/**
 * The admission workflow runs for the life of a deployment, so it continues as new; what it knows must survive
 * that: a live migration still holds its VM, an Idempotency-Key still replays. Also a project's volume quota.
 * Real dev server, simulator and worker; admission is started here with a tiny history limit to force hand-overs.
 */
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { admissionWorkflowId } from '../../workflows/admission-messages';

const vm = (name: string, capacityMiB = 8, powerState: 'poweredOn' | 'poweredOff' = 'poweredOff') => ({ name, guestId: 'debian11_64Guest', firmware: 'bios' as const, numCPUs: 1, memoryMB: 1024, powerState, disks: [{ capacityMiB }], nics: [] });
const body = (name: string, extra: Record<string, unknown> = {}) => ({
  sourceId: 'sim',
  vm: { name },
  target: { project: 'p-can', flavor: 'm1.small', volumeType: 'standard', networks: [] },
  guest: { convert: 'skip' },
  ...extra,
});

describe('admission across continue-as-new, and volume quotas', () => {
  let env: MigrationEnv;
  let api: TestApi;

  beforeAll(async () => {
    env = await createMigrationEnv('admission-can', { vms: [vm('can01'), vm('can02'), vm('can03'), vm('live01', 8, 'poweredOn'), vm('huge01', 2048)] });
    await env.startWorker();
    // Started before the API's first submission (which then finds it running): hand over every ~40 events.
    await env.client.workflow.start('admission', { workflowId: admissionWorkflowId(env.taskQueue), taskQueue: env.taskQueue, args: [undefined, { maxHistoryEvents: 40 }] });
    api = await startApi(env, { admission: { projects: { 'p-can': { volumeGiB: 1 } } } });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  async function admissionRuns(): Promise<number> {
    let runs = 1;
    let runId: string | undefined = (await env.client.workflow.getHandle(admissionWorkflowId(env.taskQueue)).describe()).runId;
    while (runId) {
      const history = await env.client.workflow.getHandle(admissionWorkflowId(env.taskQueue), runId).fetchHistory();
      runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
      if (runId) runs++;
    }
    return runs;
  }

  it('keeps live claims and idempotency keys when it continues as new', async () => {
    // A warm migration stays live (Ready) for as long as the test wants: its VM stays claimed.
    const live = await api.http.post('/migrations', body('live01', { kind: 'warm', warm: { syncIntervalSeconds: 3600 } }), { headers: { 'Idempotency-Key': 'live01-once' } });
    expect(live.status).toBe(202);
    await waitForMigration(api.http, live.data.id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || s.stage === 'Ready' });
    const runsBefore = await admissionRuns();
    for (const name of ['can01', 'can02', 'can03']) {
      const res = await api.http.post('/migrations', body(name));
      expect(res.status).toBe(202);
      expect((await waitForMigration(api.http, res.data.id, { timeoutMs: 120_000 })).status).toBe('COMPLETED');
    }
    expect(await admissionRuns()).toBeGreaterThan(runsBefore);

    // Still held, and still remembered, by the new run.
    const dup = await api.http.post('/migrations', body('live01'));
    expect(dup.status).toBe(409);
    expect(dup.data.migration).toBe(live.data.id);
    const replay = await api.http.post('/migrations', body('live01', { kind: 'warm', warm: { syncIntervalSeconds: 3600 } }), { headers: { 'Idempotency-Key': 'live01-once' } });
    expect(replay.status).toBe(202);
    expect(replay.data.id).toBe(live.data.id);
    expect(replay.headers['idempotent-replayed']).toBe('true');

    // Once it ends, the VM is free again.
    expect((await api.http.post(`/migrations/${live.data.id}/cancel`)).status).toBe(202);
    expect((await waitForMigration(api.http, live.data.id, { timeoutMs: 60_000 })).status).toBe('CANCELLED');
    const again = await api.http.post('/migrations', body('live01', { target: { ...body('x').target, instanceName: 'live01-again' } }));
    expect(again.status).toBe(202);
    await waitForMigration(api.http, again.data.id, { timeoutMs: 120_000 });
  }, 400_000);

  it("refuses a VM whose disks would take the project over its volume quota, naming both", async () => {
    const before = (await api.http.get('/migrations', { params: { project: 'p-can' } })).data.migrations.length;
    const res = await api.http.post('/migrations', body('huge01'));
    expect(res.status).toBe(409);
    expect(res.data.detail).toBe('project p-can would have 2.0 GiB of disks in live migrations, over its quota of 1 GiB (0.0 GiB now)');
    // Nothing was started.
    expect((await api.http.get('/migrations', { params: { project: 'p-can' } })).data.migrations).toHaveLength(before);
  });
});
