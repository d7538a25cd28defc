/**
 * The first minute: `npm start` with no configuration offers the bundled vSphere simulator as a lab source, and a
 * new user discovers, preflights and migrates a VM with the CLI. Runs scripts/start.ts as a user would (its own
 * Temporal dev server, worker and API), in a data directory of its own.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, REPO_ROOT } from '../../tools/temporal-dev-server';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'bin', 'vmigrate.cjs');

describe('npm start with nothing configured', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let out = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-first-minute-'));
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('offers the lab simulator as a source, and a VM is discovered, preflighted and migrated through the CLI', async () => {
    const started = Date.now();
    const [port, temporalPort, uiPort] = [await freePort(), await freePort(), await freePort()];
    const bundle = process.env.VMIGRATE_TEST_WORKFLOW_BUNDLE;
    child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts', 'start.ts')], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        VMIGRATE_CONFIG: path.join(dir, 'no-such-config.json'),
        VMIGRATE_DATA_DIR: path.join(dir, 'data'),
        PORT: String(port),
        TEMPORAL_PORT: String(temporalPort),
        TEMPORAL_UI_PORT: String(uiPort),
        LOG_LEVEL: 'warn',
        TEMPORAL_LOG_LEVEL: 'WARN',
        ...(bundle && existsSync(bundle) ? { VMIGRATE_WORKFLOW_BUNDLE: bundle } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    // The first admin token is printed once, then the API listens.
    let token: string | undefined;
    for (let i = 0; i < 600 && !token; i++) {
      token = /shown only now;[^\n]*\n\n {2}(\S+)\n/.exec(out)?.[1];
      if (child.exitCode !== null) throw new Error(`npm start exited early:\n${out}`);
      if (!token) await new Promise((r) => setTimeout(r, 200));
    }
    expect(token).toBeDefined();
    expect(out).toMatch(/offering the bundled vSphere simulator as the lab source 'lab' \(not a real vSphere/);
    const api = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 300; i++) {
      if (await fetch(`${api}/health`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const cli = async (...args: string[]) => {
      const { stdout } = await run(process.execPath, [CLI, ...args, '--output', 'json'], { env: { ...process.env, VMIGRATE_API_URL: api, VMIGRATE_TOKEN: token!, VMIGRATE_CLI_CONFIG: path.join(dir, 'cli.json') }, timeout: 120_000 });
      return stdout;
    };

    const sources = JSON.parse(await cli('sources')).sources;
    expect(sources).toEqual([expect.objectContaining({ id: 'lab', lab: true, kind: 'vcenter', description: expect.stringMatching(/simulator.*not a real vSphere/), connectivity: expect.objectContaining({ reachable: true }) })]);
    const vms = JSON.parse(await cli('vms', 'lab', '--name', 'lab-')).vms.map((v: { name: string }) => v.name);
    expect(vms).toEqual(['lab-db-1', 'lab-legacy-1', 'lab-web-1']);
    const flags = ['--source', 'lab', '--project', 'demo', '--volume-type', 'standard', '--network', 'VM Network=demo-net', '--convert', 'skip'];
    const verdicts = async (vm: string) => JSON.parse(await cli('preflight', '--vm', vm, ...flags)).verdicts[0];
    expect(await verdicts('lab-web-1')).toMatchObject({ verdict: 'Pass' });
    expect((await verdicts('lab-legacy-1')).reasons.map((r: { code: string }) => r.code)).toEqual(expect.arrayContaining(['snapshots.exist', 'disk.rdm']));
    const submitted = JSON.parse(await cli('submit', '--vm', 'lab-web-1', ...flags)).migrations[0];
    expect(submitted.status).toBe(202);
    const followed = (await cli('events', submitted.id, '--follow')).trim().split('\n').map((l) => JSON.parse(l));
    expect(followed.at(-1)).toMatchObject({ event: 'end', data: { status: 'COMPLETED' } });
    console.log(`first minute: npm start → lab source → preflight → migration Completed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 240_000);
});
