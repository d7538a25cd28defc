/**
 * The `vmigrate` CLI as users run it, against the real API, dev server, worker and simulator: every command with
 * `--output json`, a YAML plan of several VMs, login saving its token, a wrong token as one clear line with a
 * non-zero exit, and `events --follow` in a real terminal (tmux) whose per-disk progress bar moves to 100 %.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const CLI = path.resolve(__dirname, '../../bin/vmigrate.cjs');
const vm = (name: string) => ({ name, guestId: 'debian12_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff' as const, disks: [{ capacityMiB: 64 }], nics: [{ network: 'VM Network' }] });

describe('the vmigrate CLI', () => {
  let env: MigrationEnv;
  let api: TestApi;
  let home: string;

  beforeAll(async () => {
    // 80 Mbit/s: a 64 MiB disk takes ~7 s, long enough to watch its bar move.
    env = await createMigrationEnv('cli', { vms: [vm('cli-1'), vm('cli-2'), vm('cli-3')] }, { filters: [{ name: 'rate', params: { rate: `${80 * 1000 * 1000}` } }], diskImages: { 'cli-1': 64 * MiB } });
    await env.startWorker();
    api = await startApi(env, { users: [{ name: 'ops', projects: ['p-cli'], role: 'member' }], eventPollMs: 200 });
    home = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-cli-home-'));
  }, 180_000);

  afterAll(async () => {
    try {
      execFileSync('tmux', ['kill-server'], { env: { ...process.env, TMUX_TMPDIR: home }, stdio: 'ignore' });
    } catch {
      // no server left
    }
    await api?.close();
    await env?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** The CLI's environment; an empty token means none (as an unset variable). */
  const cliEnv = (token: string = api.tokens.ops) => ({
    ...process.env,
    VMIGRATE_API_URL: api.url,
    VMIGRATE_TOKEN: token,
    VMIGRATE_CLI_CONFIG: path.join(home, 'cli.json'),
  });

  /** Runs the CLI; resolves with its exit code and output (never throws on a non-zero exit). */
  async function cli(args: string[], token?: string | null): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: cliEnv(token === null ? '' : token ?? api.tokens.ops), timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }
  const json = async (args: string[]) => {
    const r = await cli([...args, '--output', 'json']);
    expect(`${args.join(' ')} → ${r.code} ${r.stderr}`).toBe(`${args.join(' ')} → 0 `);
    return JSON.parse(r.stdout);
  };

  it('answers every read command as JSON for scripts', async () => {
    const sources = await json(['sources']);
    expect(sources.sources).toEqual([expect.objectContaining({ id: 'sim', kind: 'vcenter', connectivity: expect.objectContaining({ reachable: true }) })]);
    const vms = await json(['vms', 'sim', '--name', 'cli-', '--all', '--limit', '2']);
    expect(vms.vms.map((v: { name: string }) => v.name)).toEqual(['cli-1', 'cli-2', 'cli-3']);
    const pre = await json(['preflight', '--source', 'sim', '--vm', 'cli-2', '--project', 'p-cli', '--volume-type', 'standard', '--network', 'VM Network=net-a', '--convert', 'skip']);
    expect(pre.verdicts[0]).toMatchObject({ vm: { name: 'cli-2' }, verdict: 'Pass', flavor: 'm1.small' });
    expect(await json(['list'])).toEqual({ migrations: [] });
  }, 120_000);

  it('submits from a YAML plan, follows a migration in a terminal with a moving progress bar, then reads it back', async () => {
    const plan = path.join(home, 'wave-1.yaml');
    await writeFile(
      plan,
      [
        'defaults:',
        '  sourceId: sim',
        '  target: {project: p-cli, volumeType: standard, networks: [{sourceNetwork: VM Network, targetNetwork: net-a}]}',
        '  guest: {convert: skip}',
        'migrations:',
        '  - vm: {name: cli-1}',
        '  - vm: {name: cli-2}',
        '    target: {instanceName: cli-two}',
        '',
      ].join('\n'),
    );
    const submitted = await json(['submit', '--plan', plan]);
    expect(submitted.migrations.map((m: { status: number }) => m.status)).toEqual([202, 202]);
    const [first, second] = submitted.migrations.map((m: { id: string }) => m.id);

    // A real terminal: tmux runs `events --follow`; its screen is read while the copy runs.
    const tmux = (...args: string[]) => execFileSync('tmux', args, { env: { ...cliEnv(), TMUX_TMPDIR: home }, encoding: 'utf8' });
    const command = `${process.execPath} ${CLI} events ${first} --follow; echo "EXIT=$?"; sleep 120`;
    tmux('new-session', '-d', '-s', 'follow', '-x', '160', '-y', '40', command);
    const percents = new Set<number>();
    let screen = '';
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      screen = tmux('capture-pane', '-p', '-t', 'follow');
      for (const m of screen.matchAll(/disk 2000 \|[^|]*\| (\d+)%/g)) percents.add(Number(m[1]));
      if (/EXIT=\d+/.test(screen)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(screen).toMatch(/EXIT=0/);
    expect(screen).toMatch(/end: COMPLETED/);
    expect(screen).toMatch(/migration\.completed/);
    // The bar was seen part-way (at least two values below 100) and at 100.
    expect([...percents].filter((p) => p < 100).length).toBeGreaterThanOrEqual(2);
    expect(percents.has(100)).toBe(true);

    const status = await json(['status', first]);
    expect(status).toMatchObject({ id: first, status: 'COMPLETED', stage: 'Completed', preflight: { verdict: 'Pass' } });
    await waitForMigration(api.http, second, { timeoutMs: 120_000 });
    expect((await json(['status', second])).instance).toMatchObject({ name: 'cli-two' });
    const events = await json(['events', first]);
    expect(events.events.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(['migration.submitted', 'write.started', 'migration.completed']));
    const followed = await cli(['events', first, '--follow', '--output', 'json']);
    expect(followed.code).toBe(0);
    const lines = followed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ event: 'end', data: { status: 'COMPLETED' } });
    const list = await json(['list', '--state', 'Completed']);
    expect(list.migrations.map((m: { id: string }) => m.id).sort()).toEqual([first, second].sort());
  }, 240_000);

  it('cuts over, cancels and retries through the API, each refusal one line with a non-zero exit', async () => {
    const done = (await json(['list'])).migrations[0].id;
    for (const [command, expected] of [
      ['cutover', /^vmigrate: 409 The request conflicts with the current state: migration \S+ is a cold migration; only warm migrations have a cutover\n$/],
      ['cancel', /^vmigrate: 409 .*has already ended \(COMPLETED\); nothing to cancel\n$/],
      ['retry', /^vmigrate: 409 .*has completed; there is nothing to retry\n$/],
    ] as const) {
      const r = await cli([command, done]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(expected);
    }
    // Submitted to start later, started, cancelled, then retried.
    const submitted = await json(['submit', '--later', '--source', 'sim', '--vm', 'cli-3', '--project', 'p-cli', '--volume-type', 'standard', '--network', 'VM Network=net-a', '--convert', 'skip']);
    const id = submitted.migrations[0].id;
    expect(await json(['status', id])).toMatchObject({ stage: 'Queued', awaitingStart: true });
    expect(await json(['start', id])).toEqual({ id, started: true, actor: 'ops' });
    expect(await json(['cancel', id])).toEqual({ id, cancelRequested: true });
    expect((await waitForMigration(api.http, id, { timeoutMs: 60_000 })).status).toBe('CANCELLED');
    expect(await json(['retry', id])).toMatchObject({ id, stage: 'Queued' });
    expect((await waitForMigration(api.http, id, { timeoutMs: 120_000 })).status).toBe('COMPLETED');
  }, 240_000);

  it('refuses a wrong token and a preflight failure in one clear line, and logs in with a good token', async () => {
    const wrong = await cli(['sources'], 'not-a-token');
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/^vmigrate: 401 A valid bearer token is required: .+\n$/);
    const none = await cli(['list'], null);
    expect(none.code).toBe(1);
    expect(none.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    const unmapped = await cli(['submit', '--source', 'sim', '--vm', 'cli-2', '--project', 'p-cli', '--volume-type', 'standard']);
    expect(unmapped.code).toBe(1);
    expect(unmapped.stderr).toMatch(/^vmigrate: 422 .*preflight refused VM cli-2: network\.unmapped: .*has no target network mapping.*\n$/);
    const usage = await cli(['submit', '--vm', 'cli-2']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('vmigrate: give --source <id> (see `vmigrate sources`), or a plan file with --plan\n');

    const login = await cli(['login']);
    expect(login.code).toBe(0);
    expect(login.stdout).toMatch(/^logged in to http:\/\/127\.0\.0\.1:\d+ as ops \(member; projects: p-cli\)/);
    expect((await stat(path.join(home, 'cli.json'))).mode & 0o777).toBe(0o600);
    // Later commands use the saved login when neither flag nor environment gives a token.
    const saved = await cli(['list', '--output', 'json'], null);
    expect(saved.code).toBe(0);
    expect(JSON.parse(saved.stdout).migrations.length).toBeGreaterThan(0);
  }, 120_000);
});
