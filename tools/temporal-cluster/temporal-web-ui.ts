/**
 * The Temporal Web UI for the lab: temporalio/ui-server (a Go module with the UI's built assets embedded, the same
 * server the temporalio/ui image runs) at the compose file's version, built into `.tools/temporal-cluster/ui-<version>`
 * once, and started against the lab's frontend with a config file of its own.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEMPORAL_UI_VERSION } from './cluster-versions';
import { stopProcess } from './stop-process';
import { waitForPort } from './wait-for-port';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '..', '..');

export async function ensureTemporalWebUiBuild(log: (line: string) => void = () => undefined): Promise<string> {
  const bin = path.join(REPO_ROOT, '.tools', 'temporal-cluster', `ui-${TEMPORAL_UI_VERSION}`);
  const server = path.join(bin, 'server');
  if (!existsSync(server)) {
    await mkdir(bin, { recursive: true });
    log(`building the Temporal Web UI server ${TEMPORAL_UI_VERSION} (go install, once)`);
    const started = Date.now();
    await run('go', ['install', `github.com/temporalio/ui-server/v2/cmd/server@v${TEMPORAL_UI_VERSION}`], {
      env: { ...process.env, GOBIN: bin, CGO_ENABLED: '0' },
      maxBuffer: 64 * 1024 * 1024,
    });
    log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return server;
}

export interface TemporalWebUi {
  url: string;
  stop(): Promise<void>;
}

/** The Web UI on 127.0.0.1:`port`, talking to the frontend at `address`; its log in `dir`/web-ui.log. */
export async function startTemporalWebUi(dir: string, address: string, port: number, log?: (line: string) => void): Promise<TemporalWebUi> {
  const server = await ensureTemporalWebUiBuild(log);
  const configDir = path.join(dir, 'web-ui-config');
  await mkdir(configDir, { recursive: true });
  // base.yaml is read first and the environment's file over it; everything else keeps ui-server's defaults.
  await writeFile(path.join(configDir, 'base.yaml'), '');
  await writeFile(
    path.join(configDir, 'lab.yaml'),
    [
      `temporalGrpcAddress: ${address}`,
      `port: ${port}`,
      'enableUi: true',
      'defaultNamespace: default',
      'notifyOnNewVersion: false',
      'cors:',
      '  cookieInsecure: true',
      '  allowOrigins:',
      `    - http://127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const out = createWriteStream(path.join(dir, 'web-ui.log'), { flags: 'a' });
  const child: ChildProcess = spawn(server, ['--root', dir, '--config', 'web-ui-config', '--env', 'lab', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Two streams into one log: neither may end it while the other still writes; the exit does.
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  child.once('close', () => out.end());
  await waitForPort(port, 30_000, () => child.exitCode !== null, `the Temporal Web UI (see ${path.join(dir, 'web-ui.log')})`);
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => stopProcess(child, 5000),
  };
}
