import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SEARCH_ATTRIBUTE_FLAGS } from '../shared/search-attributes';

/**
 * Starts `temporal server start-dev` from the Temporal CLI the setup script installed (the SDK's own download needs
 * the internet). The custom search attributes are registered at start, so they exist before any workflow runs.
 */

export const REPO_ROOT = path.resolve(__dirname, '..');

export function temporalCliPath(): string {
  const p = process.env.TEMPORAL_CLI_PATH ?? path.join(REPO_ROOT, '.tools', 'bin', 'temporal');
  if (!existsSync(p)) throw new Error(`Temporal CLI not found at ${p}; run \`npm run setup\` (or set TEMPORAL_CLI_PATH)`);
  return p;
}

export interface DevServerOptions {
  /** gRPC port (0 = pick a free one). */
  port?: number;
  /** Web UI port; omit for a headless server. */
  uiPort?: number;
  /** SQLite file for persistent state; omit for in-memory. */
  dbFile?: string;
  ip?: string;
  namespace?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Inherit stdio instead of capturing it. */
  verbose?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  namespace: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(host: string, port: number, child: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited with code ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`temporal dev server did not listen on ${host}:${port} within ${timeoutMs} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function assertPortFree(ip: string, port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', () =>
      reject(new Error(`${what} port ${port} on ${ip} is already in use; stop whatever holds it, or use that server with TEMPORAL_ADDRESS`)),
    );
    srv.listen(port, ip, () => srv.close(() => resolve()));
  });
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port || (await freePort());
  // Otherwise a server already listening there would look like ours coming up.
  await assertPortFree(ip, port, 'Temporal');
  if (opts.uiPort) await assertPortFree(ip, opts.uiPort, 'Temporal Web UI');
  const namespace = opts.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', namespace, '--log-level', opts.logLevel ?? 'warn'];
  if (opts.dbFile) {
    mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  for (const flag of SEARCH_ATTRIBUTE_FLAGS) args.push('--search-attribute', flag);

  const child = spawn(temporalCliPath(), args, { stdio: opts.verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer) => (output = (output + b.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // If this process ends without stop() (an uncaught error), don't leave an orphaned server holding the port.
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  await waitForPort(ip, port, child, 30_000, () => output);
  if (opts.uiPort) await waitForPort(ip, opts.uiPort, child, 30_000, () => output);
  // The frontend answers before the namespace is registered; give it a moment via a real RPC in callers
  // (Connection.connect retries) rather than sleeping here.
  return {
    address: `${ip}:${port}`,
    uiUrl: opts.uiPort ? `http://${ip}:${opts.uiPort}` : undefined,
    namespace,
    process: child,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
