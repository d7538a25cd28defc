/**
 * The Temporal server and its SQL schema tool, built from the Go module at the lab's version into
 * `.tools/temporal-cluster/<version>/bin` (once; later calls find the binaries). The schema files come from the same
 * module, in Go's module cache.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEMPORAL_SERVER_VERSION } from './cluster-versions';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface TemporalServerBuild {
  server: string;
  sqlTool: string;
  /** schema/postgresql/v12 of the module: temporal/ and visibility/, each with versioned/. */
  postgresSchemaDir: string;
}

export async function ensureTemporalServerBuild(log: (line: string) => void = () => undefined): Promise<TemporalServerBuild> {
  const bin = path.join(REPO_ROOT, '.tools', 'temporal-cluster', TEMPORAL_SERVER_VERSION, 'bin');
  const server = path.join(bin, 'server');
  const sqlTool = path.join(bin, 'sql');
  const module = `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`;
  if (!existsSync(server) || !existsSync(sqlTool)) {
    await mkdir(bin, { recursive: true });
    log(`building the Temporal server ${TEMPORAL_SERVER_VERSION} and its sql tool (go install, a few minutes once)`);
    const started = Date.now();
    await run('go', ['install', `go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}`, `go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`], {
      env: { ...process.env, GOBIN: bin, CGO_ENABLED: '0' },
      maxBuffer: 64 * 1024 * 1024,
    });
    log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  const { stdout } = await run('go', ['env', 'GOMODCACHE']);
  let moduleDir = path.join(stdout.trim(), module);
  if (!existsSync(moduleDir)) {
    await run('go', ['mod', 'download', module]);
    moduleDir = path.join(stdout.trim(), module);
  }
  return { server, sqlTool, postgresSchemaDir: path.join(moduleDir, 'schema', 'postgresql', 'v12') };
}
