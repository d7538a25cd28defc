/**
 * A real Temporal cluster on one machine: PostgreSQL (persistence and visibility), and history, matching, frontend
 * and worker as four separate server processes on loopback ports, with the same dynamic config, namespace and
 * search attributes as docker-compose.temporal.yml. Each service can be killed and started again (fault tests).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../shared/search-attributes';
import { temporalCliPath } from '../temporal-dev-server';
import { clusterPorts, TEMPORAL_SERVICES, type ClusterPorts, type TemporalService } from './cluster-versions';
import { startPostgres, type PostgresInstance } from './postgres-instance';
import { ensureTemporalServerBuild, type TemporalServerBuild } from './temporal-server-build';
import { startTemporalWebUi, type TemporalWebUi } from './temporal-web-ui';
import { stopProcess } from './stop-process';
import { waitForPort } from './wait-for-port';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const DYNAMIC_CONFIG_FILE = path.join(REPO_ROOT, 'deploy', 'temporal-dynamicconfig', 'development-sql.yaml');

export interface TemporalCluster {
  address: string;
  namespace: string;
  postgres: PostgresInstance;
  /** The Temporal Web UI on this cluster, when started with `webUi`. */
  webUiUrl?: string;
  /** SIGKILL one service's process. */
  kill(service: TemporalService): Promise<void>;
  /** Start a service again (after kill). */
  start(service: TemporalService): Promise<void>;
  /** Stop a service the way an operator's rolling restart does (SIGTERM, its graceful shutdown), then start it. */
  restart(service: TemporalService): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  log?: (line: string) => void;
  /** Added to every port of the lab's (cluster-versions.ts): tests run their clusters beside a running lab. */
  portOffset?: number;
  /** Also start the Temporal Web UI (temporal-web-ui.ts). */
  webUi?: boolean;
}

export async function startTemporalCluster(dir: string, opts: ClusterOptions = {}): Promise<TemporalCluster> {
  const log = opts.log ?? (() => undefined);
  const ports = clusterPorts(opts.portOffset);
  const build = await ensureTemporalServerBuild(log);
  await mkdir(dir, { recursive: true });
  const postgres = await startPostgres(path.join(dir, 'db'), ports.postgres);
  const children = new Map<TemporalService, ChildProcess>();
  let webUi: TemporalWebUi | undefined;
  try {
    await setUpSchemas(build, postgres);
    const configFile = path.join(dir, 'temporal.yaml');
    await writeFile(configFile, serverConfig(postgres, ports));
    const startService = async (service: TemporalService) => {
      const out = createWriteStream(path.join(dir, `${service}.log`), { flags: 'a' });
      const child = spawn(build.server, ['--config-file', configFile, '--allow-no-auth', 'start', '--service', service], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Two streams into one log: neither may end it while the other still writes; the exit does.
      child.stdout?.pipe(out, { end: false });
      child.stderr?.pipe(out, { end: false });
      child.once('close', () => out.end());
      children.set(service, child);
      // The worker service serves no gRPC of its own: its membership port says it joined the ring.
      const own = ports[service];
      const port = service === 'worker' ? own.membership : own.grpc;
      await waitForPort(port, 60_000, () => child.exitCode !== null, `${service} (see ${path.join(dir, `${service}.log`)})`);
    };
    for (const service of TEMPORAL_SERVICES) await startService(service);
    const address = `127.0.0.1:${ports.frontend.grpc}`;
    await setUpNamespace(address, 'default');
    if (opts.webUi) webUi = await startTemporalWebUi(dir, address, ports.webUi, log);
    log(`cluster up: ${TEMPORAL_SERVICES.join(', ')} on PostgreSQL :${postgres.port}${webUi ? `, Web UI ${webUi.url}` : ''}`);
    return {
      address,
      namespace: 'default',
      postgres,
      webUiUrl: webUi?.url,
      async kill(service) {
        const child = children.get(service);
        if (!child || child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      },
      start: startService,
      async restart(service) {
        const child = children.get(service);
        if (child) await stopChild(child);
        await startService(service);
      },
      async stop() {
        await webUi?.stop();
        await stopAll(children);
        await postgres.stop();
      },
    };
  } catch (err) {
    await webUi?.stop();
    await stopAll(children);
    await postgres.stop();
    throw err;
  }
}

/** A service gets 10 s for its graceful shutdown. */
const stopChild = (child: ChildProcess) => stopProcess(child, 10_000);

async function stopAll(children: Map<TemporalService, ChildProcess>): Promise<void> {
  await Promise.all([...children.values()].map(stopChild));
}

/** Databases and schemas, as the compose file's schema job does; idempotent. */
async function setUpSchemas(build: TemporalServerBuild, pg: PostgresInstance): Promise<void> {
  const base = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(pg.port), '-u', pg.user, '--pw', pg.password];
  for (const [db, schema] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ]) {
    await run(build.sqlTool, [...base, '--db', db, 'create']).catch(() => undefined); // exists already
    await run(build.sqlTool, [...base, '--db', db, 'setup-schema', '-v', '0.0']).catch(() => undefined); // set up already
    await run(build.sqlTool, [...base, '--db', db, 'update-schema', '-d', path.join(build.postgresSchemaDir, schema, 'versioned')]);
  }
}

async function setUpNamespace(address: string, namespace: string): Promise<void> {
  const cli = temporalCliPath();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await run(cli, ['operator', 'cluster', 'health', '--address', address]).then(() => true, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`the cluster at ${address} did not report healthy within 60 s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const described = await run(cli, ['operator', 'namespace', 'describe', '--address', address, '-n', namespace]).then(() => true, () => false);
  if (!described) await run(cli, ['operator', 'namespace', 'create', '--address', address, '-n', namespace, '--retention', '30d']);
  // A namespace just created takes a moment to reach every frontend's cache: retry until all are listed.
  const wanted = SEARCH_ATTRIBUTE_FLAGS.map((flag) => flag.split('=') as [string, string]);
  const saDeadline = Date.now() + 60_000;
  for (;;) {
    const { stdout } = await run(cli, ['operator', 'search-attribute', 'list', '--address', address, '-n', namespace]).catch(() => ({ stdout: '' }));
    const missing = wanted.filter(([name]) => !new RegExp(`^\\s*${name}\\s`, 'm').test(stdout));
    if (missing.length === 0) return;
    if (Date.now() > saDeadline) throw new Error(`search attributes ${missing.map(([n]) => n).join(', ')} could not be created in ${namespace}`);
    for (const [name, type] of missing) {
      await run(cli, ['operator', 'search-attribute', 'create', '--address', address, '-n', namespace, '--name', name, '--type', type]).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The server configuration: the four services on their loopback ports, both stores on the lab's PostgreSQL. */
export function serverConfig(pg: { port: number; user: string; password: string }, ports: ClusterPorts = clusterPorts()): string {
  const store = (db: string, conns: number) => `      sql:
        pluginName: "postgres12"
        databaseName: "${db}"
        connectAddr: "127.0.0.1:${pg.port}"
        connectProtocol: "tcp"
        user: "${pg.user}"
        password: "${pg.password}"
        maxConns: ${conns}
        maxIdleConns: ${conns}
        maxConnLifetime: "1h"`;
  const service = (name: TemporalService) => {
    const p = ports[name];
    const http = 'http' in p ? `\n      httpPort: ${p.http}` : '';
    return `  ${name}:
    rpc:
      grpcPort: ${p.grpc}
      membershipPort: ${p.membership}
      bindOnLocalHost: true${http}`;
  };
  return `log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
${store('temporal', 20)}
    postgres-visibility:
${store('temporal_visibility', 4)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:${ports.metrics}"
services:
${TEMPORAL_SERVICES.map(service).join('\n')}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${ports.frontend.grpc}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "${DYNAMIC_CONFIG_FILE}"
  pollInterval: "10s"
`;
}
