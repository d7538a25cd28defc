import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { serveEnrollment } from '../../api/agent-enrollment';
import { defaultAgentIsoCacheDir, ensureAgentIsoParts } from '../../source/agent/agent-iso';
import { makeDiskImage, sha256File } from '../../tools/disk-image';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { admissionWorkflowId } from '../../workflows/admission-messages';
import { confirmSignal } from '../../workflows/agent-migration-state';
import { recordRunHistories } from '../harness/record-histories';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { until } from '../harness/until';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SESSION_SECONDS = 20;

/** The configuration an ISO carries: its second initramfs (a cpio with one JSON file), read back from the ISO. */
async function isoConfig(iso: string, dir: string): Promise<Record<string, string>> {
  const out = path.join(dir, `cfg-${Date.now()}.cpio`);
  await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/boot/vmigrate.cpio', out]);
  const text = (await readFile(out)).toString('latin1');
  const start = text.indexOf('{');
  return JSON.parse(text.slice(start, text.indexOf('}', start) + 1));
}

interface RunningAgent {
  proc: ChildProcess;
  console: string[];
  exited: Promise<number | null>;
}

/** The agent outside its ISO: the same binary, serving disk image files instead of the machine's block devices. */
function startAgent(binary: string, configFile: string, disks: string[], uuid: string, extra: string[] = []): RunningAgent {
  const proc = spawn(binary, ['-config', configFile, ...disks.flatMap((d) => ['-disk', d]), '-machine-uuid', uuid, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => lines.push(...c.split('\n').filter(Boolean)));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => lines.push(...c.split('\n').filter(Boolean)));
  return { proc, console: lines, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
}


describe('agent-based migration: templates, ISO, enrollment, copy through the gateway, resume and change detection', () => {
  let env: MigrationEnv;
  let api: TestApi;
  let enrollment: Server;
  let agentBinary: string;
  let templateId: string;
  const agents: RunningAgent[] = [];

  const kill = async (a: RunningAgent) => {
    a.proc.kill('SIGKILL');
    await a.exited;
  };
  beforeAll(async () => {
    env = await createMigrationEnv('agent', { vms: [] }, {
      agentsReachAt: '127.0.0.1',
      // An agent outside its ISO reports this machine's own CPUs and memory: a flavor that fits any test machine.
      localFlavors: [{ name: 'host.fit', vcpus: 256, ramMB: 4 * 1024 * 1024 }],
      // Tokens of 20 s: every agent here renews its session, some of them mid-copy.
      agentSessionLifetimeSeconds: SESSION_SECONDS,
    });
    await env.startWorker();
    api = await startApi(env);
    // Project p-quota: one migration running at a time, and 100 MiB of disks in live migrations.
    enrollment = await serveEnrollment({
      client: env.client,
      taskQueue: env.taskQueue,
      agents: env.config.agents!,
      logger: pino({ level: 'silent' }),
      limits: { projects: { 'p-quota': { concurrentMigrations: 1, volumeGiB: 100 / 1024 } } },
    });
    agentBinary = (await ensureAgentIsoParts(defaultAgentIsoCacheDir())).agent;
    const created = await api.http.post('/agent-templates', {
      name: 'physical servers',
      target: { project: 'p1', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'skip' },
      autoStart: false,
    });
    if (created.status !== 201) throw new Error(JSON.stringify(created.data));
    templateId = created.data.id;
  }, 300_000);

  afterAll(async () => {
    for (const a of agents) a.proc.kill('SIGKILL');
    enrollment?.close();
    await api?.close();
    await env?.close();
  });

  async function downloadIso(template = templateId): Promise<{ iso: string; keyId: string; config: Record<string, string> }> {
    const res = await api.http.get(`/agent-templates/${template}/iso`, { responseType: 'arraybuffer' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-iso9660-image');
    const iso = path.join(env.dir, `${res.headers['x-enrollment-key-id']}.iso`);
    await writeFile(iso, Buffer.from(res.data));
    const config = await isoConfig(iso, env.dir);
    return { iso, keyId: String(res.headers['x-enrollment-key-id']), config };
  }

  /** The machine's migration id: the API derives it from what the agent reports, so read it off the agent's console. */
  const migrationIdFrom = (a: RunningAgent) =>
    until('the agent enrolled', () => a.console.map((l) => / migration (agent-m-[0-9a-f]{20})/.exec(l)?.[1]).find(Boolean));

  it('an ISO carries its own enrollment key; the machine appears with what the agent found, waits for confirmation, and its disk lands byte for byte', async () => {
    const { iso, keyId, config } = await downloadIso();
    expect((await run('file', ['-b', iso])).stdout).toMatch(/ISO 9660.*bootable/);
    expect(config.enrollmentKey).toMatch(new RegExp(`^vmk_${templateId}_${keyId}_`));
    expect(config.apiUrl).toBe(env.config.agents!.enrollment.url);
    const tpl = (await api.http.get(`/agent-templates/${templateId}`)).data;
    expect(tpl.enrollmentKeys.map((k: { id: string }) => k.id)).toContain(keyId);
    expect(JSON.stringify(tpl)).not.toContain(config.enrollmentKey.split('_').at(-1));

    const disk = path.join(env.dir, 'server1.img');
    await makeDiskImage(disk, 64 * MiB);
    const sourceSha = await sha256File(disk);
    const cfgFile = path.join(env.dir, 'agent1.json');
    await writeFile(cfgFile, JSON.stringify(config));
    // One idle connection per disk: the copy's four connections are opened when it needs them.
    const agent = startAgent(agentBinary, cfgFile, [disk], '11111111-2222-4333-8444-555555555555', ['-connections', '1']);
    agents.push(agent);
    const id = await migrationIdFrom(agent);

    const waiting = await waitForMigration(api.http, id, { done: (s) => s.agent?.awaitingConfirmation === true });
    expect(waiting).toMatchObject({ kind: 'agent', stage: 'Queued', sourceId: 'agent', target: { project: 'p1' } });
    expect(waiting.agent.disks).toEqual([expect.objectContaining({ index: 0, sizeBytes: 64 * MiB, name: 'server1.img' })]);
    expect(waiting.agent.cpu.threads).toBeGreaterThan(0);
    expect(waiting.agent.memoryBytes).toBeGreaterThan(0);
    expect(waiting.agent.nics.length).toBeGreaterThanOrEqual(0);
    expect(await until('the console says it waits', () => agent.console.find((l) => l.includes('waits for a confirmation')))).toBeTruthy();
    // Confirmed only once the first session token has expired: the disk connections the copy opens from now on carry
    // the renewed one, and the gateway lets them in (it refuses an expired token).
    const enrolledAt = Date.now();
    expect(await until('the session renewed', () => agent.console.find((l) => /session renewed until \d{4}-/.test(l)), 30_000)).toBeTruthy();
    await new Promise((r) => setTimeout(r, Math.max(0, enrolledAt + SESSION_SECONDS * 1000 + 1000 - Date.now())));

    const started = await api.http.post(`/migrations/${id}/start`, {});
    expect(started.status).toBe(202);
    const done = await waitForMigration(api.http, id, { timeoutMs: 180_000 });
    expect([done.status, done.error]).toEqual(['COMPLETED', undefined]);
    expect(done.disks[0].verification.match).toBe(true);
    const volume = await env.target.findVolume('p1', { migrationId: id, disk: '0' });
    expect(await sha256File(env.target.volumePath('p1', volume!.name))).toBe(sourceSha);
    // Read-only: the source disk is as it was.
    expect(await sha256File(disk)).toBe(sourceSha);
    expect(await until('the console says it completed', () => agent.console.find((l) => l.includes('migration completed')))).toBeTruthy();
    await kill(agent);
  }, 300_000);

  it('killed mid-copy and started again: the same migration resumes from its watermark, reading at most what was left plus one checkpoint window', async () => {
    // A template limiting each machine to 64 Mbit/s: the copy takes seconds, long enough to stop it in the middle.
    const limited = await api.http.post('/agent-templates', {
      name: 'servers on a shared uplink',
      target: { project: 'p1', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'skip' },
      bandwidthLimitMbps: 64,
    });
    expect(limited.status).toBe(201);
    expect(limited.data.bandwidthLimitMbps).toBe(64);
    const { config } = await downloadIso(limited.data.id);
    const cfgFile = path.join(env.dir, 'agent2.json');
    await writeFile(cfgFile, JSON.stringify(config));
    const disk = path.join(env.dir, 'server2.img');
    const size = 96 * MiB;
    await makeDiskImage(disk, size, { dataRegions: 20 });
    const uuid = '22222222-2222-4333-8444-555555555555';
    const first = startAgent(agentBinary, cfgFile, [disk], uuid);
    agents.push(first);
    const id = await migrationIdFrom(first);
    expect(await until('the limit told', () => first.console.find((l) => l.includes('the template limits sending to 64 Mbit/s')))).toBeTruthy();
    await waitForMigration(api.http, id, { done: (s) => s.agent?.awaitingConfirmation === true });
    await api.http.post(`/migrations/${id}/start`, {});
    const mid = await waitForMigration(api.http, id, { done: (s) => s.disks[0]?.bytesDone >= 24 * MiB, timeoutMs: 120_000 });
    await kill(first);
    const watermark = mid.disks[0].bytesDone;
    expect(watermark).toBeLessThan(size);

    // Booted again, from the same ISO: unchanged disk first.
    const second = startAgent(agentBinary, cfgFile, [disk], uuid);
    agents.push(second);
    expect(await migrationIdFrom(second)).toBe(id);
    expect(await until('told it goes on', () => second.console.find((l) => l.includes('is running (WriteVolume): it goes on from where it was')))).toBeTruthy();
    const done = await waitForMigration(api.http, id, { timeoutMs: 180_000 });
    expect([done.status, done.error]).toEqual(['COMPLETED', undefined]);
    expect(done.agent.runs.length).toBe(2);
    const window = 64 * MiB; // the copy engine's checkpoint window: chunks in flight beyond the watermark
    expect(done.disks[0].bytesRead).toBeLessThanOrEqual(size - watermark + window);
    expect(done.disks[0].bytesRead).toBeLessThan(size);
    const volume = await env.target.findVolume('p1', { migrationId: id, disk: '0' });
    expect(await sha256File(env.target.volumePath('p1', volume!.name))).toBe(await sha256File(disk));
    expect(done.warnings.join(' ')).not.toMatch(/changed on the machine/);
    await kill(second);
    // Re-record the replay test's histories (VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories): a migration confirmed
    // through the API, whose agent enrolled twice, and the template with its keys.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) {
      await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'agent-migration-v1'));
      await recordRunHistories(env.client, `agent-template-${templateId}`, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'agent-template-v1'));
    }
  }, 400_000);

  it('a disk changed between two boots is detected and copied again, never merged', async () => {
    const { config } = await downloadIso();
    const cfgFile = path.join(env.dir, 'agent3.json');
    await writeFile(cfgFile, JSON.stringify(config));
    const disk = path.join(env.dir, 'server3.img');
    const size = 96 * MiB;
    await makeDiskImage(disk, size, { dataRegions: 20 });
    const uuid = '33333333-2222-4333-8444-555555555555';
    const first = startAgent(agentBinary, cfgFile, [disk], uuid, ['-max-rate', String(8 * MiB)]);
    agents.push(first);
    const id = await migrationIdFrom(first);
    await waitForMigration(api.http, id, { done: (s) => s.agent?.awaitingConfirmation === true });
    await api.http.post(`/migrations/${id}/start`, {});
    await waitForMigration(api.http, id, { done: (s) => s.disks[0]?.bytesDone >= 24 * MiB, timeoutMs: 120_000 });
    await kill(first);
    // Someone booted the original OS: one byte below the watermark is different now.
    const f = await open(disk, 'r+');
    const b = Buffer.alloc(1);
    await f.read(b, 0, 1, 4096);
    await f.write(Buffer.from([b[0] ^ 0xff]), 0, 1, 4096);
    await f.close();
    const second = startAgent(agentBinary, cfgFile, [disk], uuid);
    agents.push(second);
    const done = await waitForMigration(api.http, id, { timeoutMs: 180_000 });
    expect([done.status, done.error]).toEqual(['COMPLETED', undefined]);
    expect(done.warnings.join(' ')).toMatch(/disk 0 changed on the machine since an earlier boot of the agent copied \d+ bytes of it .* copying it again from the start/);
    const events = (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; data?: { resumedFrom?: number } }>;
    expect(events.filter((e) => e.name === 'export.progress').at(-1)?.data?.resumedFrom).toBe(0);
    const volume = await env.target.findVolume('p1', { migrationId: id, disk: '0' });
    expect(await sha256File(env.target.volumePath('p1', volume!.name))).toBe(await sha256File(disk));
    expect(await until('the console says so', () => second.console.find((l) => l.includes('changed since the last boot')))).toBeTruthy();
    await kill(second);
  }, 400_000);

  it('an encrypted disk is copied as it is, with a warning; confirmed with the `confirm` Signal, as the Temporal Web UI sends it', async () => {
    const { config } = await downloadIso();
    const cfgFile = path.join(env.dir, 'agent-luks.json');
    await writeFile(cfgFile, JSON.stringify(config));
    const disk = path.join(env.dir, 'luks.img');
    const fh = await open(disk, 'w');
    await fh.truncate(32 * MiB);
    await fh.close();
    await writeFile(path.join(env.dir, 'luks.key'), 'not-a-real-passphrase');
    await run('cryptsetup', ['luksFormat', '--type', 'luks2', '--batch-mode', '--key-file', path.join(env.dir, 'luks.key'), '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', disk]);
    const sourceSha = await sha256File(disk);
    const agent = startAgent(agentBinary, cfgFile, [disk], '66666666-2222-4333-8444-555555555555');
    agents.push(agent);
    const id = await migrationIdFrom(agent);
    const waiting = await waitForMigration(api.http, id, { done: (s) => s.agent?.awaitingConfirmation === true });
    expect(waiting.agent.guest).toMatchObject({ type: 'unknown', encrypted: true, notes: [expect.stringMatching(/luks\.img is LUKS-encrypted: copied as it is$/)] });
    expect(waiting.agent.confirmation).toBeUndefined();

    // What the Web UI's "Send Signal" does: the signal by its name, no input.
    await env.client.workflow.getHandle(id).signal(confirmSignal);
    const done = await waitForMigration(api.http, id, { timeoutMs: 120_000 });
    expect([done.status, done.error]).toEqual(['COMPLETED', undefined]);
    expect(done.agent.confirmation).toMatchObject({ by: 'temporal-ui', via: 'signal' });
    expect(done.warnings).toContain('an encrypted disk was found: it is copied as it is; it decrypts in the target only if its key is not kept in the source machine (a TPM)');
    const volume = await env.target.findVolume('p1', { migrationId: id, disk: '0' });
    expect(await sha256File(env.target.volumePath('p1', volume!.name))).toBe(sourceSha);
    expect((await run('cryptsetup', ['luksDump', env.target.volumePath('p1', volume!.name)])).stdout).toMatch(/^Version:\s+2$/m);
    await kill(agent);
  }, 120_000);

  it('a wrong or revoked enrollment key is refused with a clear message on the console, and nothing is created', async () => {
    const { keyId, config } = await downloadIso();
    const disk = path.join(env.dir, 'server4.img');
    await makeDiskImage(disk, 8 * MiB);
    const before = (await api.http.get('/migrations', { params: { kind: 'agent' } })).data;

    const wrong = { ...config, enrollmentKey: `vmk_${templateId}_${keyId}_${'A'.repeat(43)}` };
    await writeFile(path.join(env.dir, 'wrong.json'), JSON.stringify(wrong));
    const a = startAgent(agentBinary, path.join(env.dir, 'wrong.json'), [disk], '44444444-2222-4333-8444-555555555555');
    agents.push(a);
    expect(await until('refused', () => a.console.find((l) => l.includes('REFUSED')))).toContain(`the enrollment key ${keyId} is not valid for template ${templateId}`);
    await kill(a);

    expect((await api.http.delete(`/agent-templates/${templateId}/enrollment-keys/${keyId}`)).status).toBe(200);
    await writeFile(path.join(env.dir, 'revoked.json'), JSON.stringify(config));
    const r = startAgent(agentBinary, path.join(env.dir, 'revoked.json'), [disk], '44444444-2222-4333-8444-555555555555');
    agents.push(r);
    expect(await until('refused', () => r.console.find((l) => l.includes('REFUSED')))).toMatch(new RegExp(`the enrollment key ${keyId} of template ${templateId} was revoked at \\d{4}-`));
    await kill(r);
    const after = (await api.http.get('/migrations', { params: { kind: 'agent' } })).data;
    expect(JSON.stringify(after.migrations ?? after.items)).toBe(JSON.stringify(before.migrations ?? before.items));
  }, 120_000);

  it("a machine's migration goes through admission: its project's quotas keep it Queued in line, or refuse it at enrollment with the reason", async () => {
    const quoted = await api.http.post('/agent-templates', {
      name: 'quota-bound servers',
      target: { project: 'p-quota', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'skip' },
      autoStart: true,
    });
    expect(quoted.status).toBe(201);
    const { config } = await downloadIso(quoted.data.id);
    const cfgFile = path.join(env.dir, 'agent-quota.json');
    await writeFile(cfgFile, JSON.stringify(config));
    const disks = { a: 48 * MiB, b: 32 * MiB, c: 64 * MiB };
    for (const [name, size] of Object.entries(disks)) await makeDiskImage(path.join(env.dir, `quota-${name}.img`), size);

    // A runs (at 8 MiB/s, for seconds); B, enrolling meanwhile, waits in line behind the project's one running slot.
    const a = startAgent(agentBinary, cfgFile, [path.join(env.dir, 'quota-a.img')], '55555555-aaaa-4333-8444-555555555555', ['-max-rate', String(8 * MiB)]);
    agents.push(a);
    const idA = await migrationIdFrom(a);
    await waitForMigration(api.http, idA, { done: (s) => s.stage === 'WriteVolume' });
    const b = startAgent(agentBinary, cfgFile, [path.join(env.dir, 'quota-b.img')], '55555555-bbbb-4333-8444-555555555555');
    agents.push(b);
    const idB = await migrationIdFrom(b);
    expect(await until('B told it waits', () => b.console.find((l) => l.includes('the migration waits for its turn on the destination (place 1 in line)')))).toBeTruthy();
    const queue = (await api.http.get('/admission')).data;
    expect(queue.queue).toEqual([expect.objectContaining({ migrationId: idB, project: 'p-quota', position: 1, waitingFor: ['project p-quota: 1 of 1 concurrent migrations running'] })]);
    expect((await api.http.get(`/migrations/${idB}`)).data.stage).toBe('Queued');

    // C would bring the project's live disks to 144 MiB, over its 100 MiB: refused, and the agent says why.
    const c = startAgent(agentBinary, cfgFile, [path.join(env.dir, 'quota-c.img')], '55555555-cccc-4333-8444-555555555555');
    agents.push(c);
    expect(await until('C refused', () => c.console.find((l) => l.includes('REFUSED')))).toMatch(/the migration of machine m-[0-9a-f]{20} cannot start: project p-quota would have 0\.1 GiB of disks in live migrations, over its quota of 0\.09765625 GiB/);
    await kill(c);

    const doneA = await waitForMigration(api.http, idA, { timeoutMs: 120_000 });
    const doneB = await waitForMigration(api.http, idB, { timeoutMs: 120_000 });
    expect([doneA.status, doneB.status]).toEqual(['COMPLETED', 'COMPLETED']);
    // B was admitted (left Queued) only once A had created its instance and given its place back.
    const eventsA = (await api.http.get(`/migrations/${idA}/events`)).data.events as Array<{ name: string; time: string }>;
    const eventsB = (await api.http.get(`/migrations/${idB}/events`)).data.events as Array<{ name: string; time: string }>;
    const finalizedA = eventsA.find((e) => e.name === 'finalize.completed')!.time;
    const admittedB = eventsB.find((e) => e.name === 'migration.admitted')!.time;
    expect(Date.parse(admittedB)).toBeGreaterThanOrEqual(Date.parse(finalizedA));
    expect(eventsA.find((e) => e.name === 'migration.admitted')).toBeDefined();
    const volume = await env.target.findVolume('p-quota', { migrationId: idB, disk: '0' });
    expect(await sha256File(env.target.volumePath('p-quota', volume!.name))).toBe(await sha256File(path.join(env.dir, 'quota-b.img')));
    await kill(a);
    await kill(b);
    // Re-record the replay test's histories: a machine's migration that waited in Queued for admission's grant, and
    // admission with machines among its candidates.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) {
      await recordRunHistories(env.client, idB, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'agent-migration-admission-v1'));
      await recordRunHistories(env.client, admissionWorkflowId(env.taskQueue), path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'admission-agent-v1'));
    }
  }, 300_000);
});
