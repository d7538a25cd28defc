/**
 * Admission through the API, for real (dev server, simulator, worker): one live migration per source VM however it
 * is named and however many identical requests race, Idempotency-Key replays, several VMs in one request, a
 * per-host disk-copy cap that holds the second VM in Queued with its place in line, progress with rate and ETA,
 * and the live event stream (SSE) with Last-Event-ID resume. Then: no secret in any history or log line.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';
import path from 'node:path';
import { recordRunHistories } from '../harness/record-histories';
import { readEventStream } from '../harness/sse-client';
import { admissionWorkflowId } from '../../workflows/admission-messages';

const MiB = 1024 * 1024;

/** Every string and every byte field (payloads, decoded as UTF-8) of a history, as one text to search. */
function textOf(value: unknown, out: string[] = []): string {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const v of value) textOf(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) textOf(v, out);
  return out.join('\n');
}
const vm = (name: string, capacityMiB = 8) => ({ name, guestId: 'debian11_64Guest', firmware: 'bios' as const, numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff' as const, disks: [{ capacityMiB }], nics: [] });

const body = (vmSel: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  sourceId: 'sim',
  vm: vmSel,
  target: { project: 'p-adm', flavor: 'm1.small', volumeType: 'standard', networks: [] },
  // Admission is under test: no libguestfs inspection (about a minute under TCG) per migration.
  guest: { convert: 'skip' },
  ...extra,
});

describe('admission: one live migration per VM, idempotent submissions, copy slots per source host', () => {
  let env: MigrationEnv;
  let api: TestApi;
  const logLines: string[] = [];

  beforeAll(async () => {
    env = await createMigrationEnv(
      'admission',
      { vms: [vm('dup01', 64), vm('dup02'), vm('idem01'), vm('cap01', 64), vm('cap02', 64)] },
      // 80 Mbit/s through nbdkit's rate filter: a 64 MiB copy takes about 7 s, long enough to race submissions
      // against it and to watch the queue.
      { filters: [{ name: 'rate', params: { rate: `${80 * 1000 * 1000}` } }], diskImages: { dup01: 64 * MiB, cap01: 64 * MiB, cap02: 64 * MiB } },
    );
    await env.startWorker();
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    api = await startApi(env, {
      users: [{ name: 'alice', projects: ['p-adm'], role: 'member' }],
      admission: { copiesPerSourceHost: 1 },
      logger: pino({ level: 'debug' }, sink),
      eventPollMs: 200,
      eventStreamsPerUser: 1,
    });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('20 identical submissions at the same instant start exactly one migration', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => api.as('alice').post('/migrations', body({ name: 'dup01' }))));
    const admitted = answers.filter((a) => a.status === 202);
    expect(admitted).toHaveLength(1);
    const id = admitted[0].data.id;
    for (const a of answers.filter((x) => x.status !== 202)) {
      expect(a.status).toBe(409);
      expect(a.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(a.data).toMatchObject({ type: 'urn:vmigrate:problem:conflict', migration: id });
      expect(a.data.detail).toMatch(new RegExp(`^VM dup01 \\(vm-\\d+\\) of source sim is already being migrated by ${id}`));
    }
    const moref = admitted[0].data.sourceVm.split('/')[1];
    const listed = await api.http.get('/migrations', { params: { sourceId: 'sim', vm: moref } });
    expect(listed.status).toBe(200);
    expect(listed.data.migrations.map((m: { id: string }) => m.id)).toEqual([id]);
    const done = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect(done.status).toBe('COMPLETED');
    expect(done.submittedBy).toBe('alice');

    // Once it has ended, the VM can be migrated again.
    const again = await api.as('alice').post('/migrations', body({ name: 'dup01' }, { target: { ...body({}).target, instanceName: 'dup01-again' } }));
    expect(again.status).toBe(202);
    expect(again.data.id).not.toBe(id);
    expect((await waitForMigration(api.http, again.data.id, { timeoutMs: 120_000 })).status).toBe('COMPLETED');
  }, 300_000);

  it('the same VM by name and by moref is one VM', async () => {
    const byName = await api.as('alice').post('/migrations', body({ name: 'dup02' }));
    expect(byName.status).toBe(202);
    const moref = byName.data.sourceVm.split('/')[1];
    expect(moref).toMatch(/^vm-\d+$/);
    const byMoref = await api.as('alice').post('/migrations', body({ moref }));
    expect(byMoref.status).toBe(409);
    expect(byMoref.data.migration).toBe(byName.data.id);
    await waitForMigration(api.http, byName.data.id, { timeoutMs: 120_000 });
  }, 200_000);

  it('an Idempotency-Key answers a repeated request with the same migration, and refuses another body', async () => {
    const headers = { 'Idempotency-Key': 'submit-idem01-2026-12-01' };
    const first = await api.as('alice').post('/migrations', body({ name: 'idem01' }), { headers });
    expect(first.status).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const replay = await api.as('alice').post('/migrations', body({ name: 'idem01' }), { headers });
    expect(replay.status).toBe(202);
    expect(replay.data.id).toBe(first.data.id);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const other = await api.as('alice').post('/migrations', body({ name: 'idem01' }, { target: { ...body({}).target, instanceName: 'renamed' } }), { headers });
    expect(other.status).toBe(422);
    expect(other.data.detail).toMatch(/Idempotency-Key was already used with a different request body/);
    // Keys belong to their caller: the admin's same key is a new request (and finds the VM busy or free, not a replay).
    const admins = await api.http.post('/migrations', body({ name: 'idem01' }), { headers });
    expect(admins.headers['idempotent-replayed']).toBeUndefined();
    const done = await waitForMigration(api.http, first.data.id, { timeoutMs: 120_000 });
    expect(done.status).toBe('COMPLETED');
    if (admins.status === 202) await waitForMigration(api.http, admins.data.id, { timeoutMs: 120_000 });
    // Still remembered after the migration ended.
    const late = await api.as('alice').post('/migrations', body({ name: 'idem01' }), { headers });
    expect(late.status).toBe(202);
    expect(late.data.id).toBe(first.data.id);
  }, 300_000);

  it('with one copy per source host, the second VM waits in Queued with its place in line and starts when the first has copied', async () => {
    const submit = await api.as('alice').post('/migrations', { ...body({}), vm: undefined, vms: [{ name: 'cap01' }, { name: 'cap02' }] });
    expect(submit.status).toBe(202);
    const [a, b] = submit.data.migrations;
    expect(a).toMatchObject({ status: 202, vm: { name: 'cap01' }, stage: 'Queued' });
    expect(b).toMatchObject({ status: 202, vm: { name: 'cap02' }, stage: 'Queued', queuePosition: 1 });

    // Follow the first one's events live while it runs.
    const stream = readEventStream(`${api.url}/migrations/${a.id}/events`, { Authorization: `Bearer ${api.tokens.alice}` }, { timeoutMs: 180_000 });

    // One stream per user here: a second one while the first is open is refused (429), not served.
    await new Promise((r) => setTimeout(r, 500));
    const second = await api.as('alice').get(`/migrations/${a.id}/events`, { headers: { Accept: 'text/event-stream' } });
    expect(second.status).toBe(429);
    expect(second.data.detail).toBe('you have 1 event streams open (at most 1); close one first');

    // While the first copies, the second is Queued behind the host's one copy slot.
    const copying = await waitForMigration(api.http, a.id, { timeoutMs: 120_000, done: (s) => s.status !== 'RUNNING' || (s.disks[0]?.state === 'copying' && s.disks[0].progress.processed > 0 && s.disks[0].rateBytesPerSecond > 0) });
    expect(copying.status).toBe('RUNNING');
    const d = copying.disks[0];
    expect(d.progress.total).toBe(64 * MiB);
    expect(d.progress.processed + d.progress.remaining).toBe(d.progress.total);
    expect(d.etaSeconds).toBeGreaterThanOrEqual(0);
    const waiting = await api.as('alice').get(`/migrations/${b.id}`);
    expect(waiting.data).toMatchObject({ status: 'RUNNING', stage: 'Queued', queue: { position: 1, waiting: 1 } });
    expect(waiting.data.queue.waitingFor).toEqual([expect.stringMatching(/^source host host-\d+: 1 of 1 disk copies in use$/)]);
    expect(waiting.data.disks).toEqual([]);
    const ledger = await api.http.get('/admission');
    expect(ledger.status).toBe(200);
    expect(ledger.data.running).toEqual([expect.objectContaining({ migrationId: a.id, copySlots: 1 })]);
    expect(ledger.data.queue).toEqual([expect.objectContaining({ migrationId: b.id, position: 1 })]);

    const [doneA, doneB] = await Promise.all([waitForMigration(api.http, a.id, { timeoutMs: 180_000 }), waitForMigration(api.http, b.id, { timeoutMs: 240_000 })]);
    expect(doneA.status).toBe('COMPLETED');
    expect(doneB.status).toBe('COMPLETED');
    const eventsOf = async (id: string) => (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; time: string; live?: boolean }>;
    const eventsA = await eventsOf(a.id);
    const eventsB = await eventsOf(b.id);
    const aCopied = Date.parse(eventsA.filter((e) => e.name === 'write.progress').at(-1)!.time);
    const bAdmitted = Date.parse(eventsB.find((e) => e.name === 'migration.admitted')!.time);
    expect(bAdmitted).toBeGreaterThanOrEqual(aCopied);
    expect(eventsB.find((e) => e.name === 'write.started')).toBeDefined();

    // The live stream delivered the same events, in the same order, each once, then `end`.
    const live = await stream;
    expect(live.status).toBe(200);
    expect(live.contentType).toMatch(/^text\/event-stream/);
    const durable = live.events.filter((e) => e.id !== undefined);
    expect(durable.map((e) => e.event)).toEqual(eventsA.map((e) => e.name));
    expect(new Set(durable.map((e) => e.id)).size).toBe(durable.length);
    expect(live.events.at(-1)).toMatchObject({ event: 'end' });
    expect(JSON.parse(live.events.at(-1)!.data)).toEqual({ status: 'COMPLETED' });

    // Reconnecting with Last-Event-ID resumes right after that event.
    const resumed = await readEventStream(`${api.url}/migrations/${a.id}/events`, { Authorization: `Bearer ${api.tokens.alice}`, 'Last-Event-ID': durable[2].id! });
    expect(resumed.events.filter((e) => e.id !== undefined).map((e) => e.id)).toEqual(durable.slice(3).map((e) => e.id));
    expect(resumed.events.at(-1)!.event).toBe('end');

    // Re-record the replay test's histories of this path with VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories:
    // a migration that waited in Queued for its slot, and admission itself (running: its history so far).
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) {
      await recordRunHistories(env.client, b.id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-admission-v1'));
      await recordRunHistories(env.client, admissionWorkflowId(env.taskQueue), path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'admission-v1'));
    }
  }, 400_000);

  it('leaves no secret in any workflow history or API log line', async () => {
    const secrets = [SIM_PASSWORD, ...Object.values(api.tokens)];
    const ids = [admissionWorkflowId(env.taskQueue)];
    for await (const wf of env.client.workflow.list({ query: `TaskQueue = '${env.taskQueue}'` })) ids.push(wf.workflowId);
    expect(ids.length).toBeGreaterThan(5);
    for (const id of new Set(ids)) {
      const history = textOf(await env.client.workflow.getHandle(id).fetchHistory());
      for (const s of secrets) expect(history).not.toContain(s);
    }
    expect(logLines.length).toBeGreaterThan(20);
    const logs = logLines.join('');
    for (const s of secrets) expect(logs).not.toContain(s);
  }, 120_000);
});
