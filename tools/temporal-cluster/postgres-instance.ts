/**
 * A private PostgreSQL for the lab: its own data directory and a loopback port, run as the `postgres` system user
 * (PostgreSQL refuses to run as root), started and stopped with pg_ctl. A `temporal` role owns the databases.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { POSTGRES_MAJOR } from './cluster-versions';
import { portAnswers } from './wait-for-port';

const run = promisify(execFile);
const BIN = `/usr/lib/postgresql/${POSTGRES_MAJOR}/bin`;

export interface PostgresInstance {
  port: number;
  dataDir: string;
  user: string;
  password: string;
  /** pg_ctl restart (fast shutdown): for fault tests. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** As the postgres user when we are root; as ourselves otherwise. */
function asPostgres(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const root = process.getuid?.() === 0;
  return root ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
}

export async function startPostgres(baseDir: string, port: number): Promise<PostgresInstance> {
  if (!existsSync(path.join(BIN, 'pg_ctl'))) {
    throw new Error(`PostgreSQL ${POSTGRES_MAJOR} is not installed (${BIN}); run \`npm run setup\` (scripts/setup-temporal-cluster.sh)`);
  }
  if (await portAnswers(port)) {
    throw new Error(`port ${port} is already in use (a PostgreSQL left running by an earlier lab or test run that was killed?): stop it first`);
  }
  const dataDir = path.join(baseDir, 'postgres');
  const logFile = path.join(baseDir, 'postgres.log');
  await mkdir(baseDir, { recursive: true });
  if (process.getuid?.() === 0) {
    await run('chown', ['postgres:postgres', baseDir]);
    await chmod(baseDir, 0o755);
  }
  const user = 'temporal';
  const password = 'temporal';
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await asPostgres(path.join(BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-instructions']);
  }
  const ctl = (...args: string[]) => asPostgres(path.join(BIN, 'pg_ctl'), ['-D', dataDir, '-l', logFile, ...args]);
  const options = `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on`;
  await ctl('-w', '-o', options, 'start');
  const psql = (sql: string) => asPostgres(path.join(BIN, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qtAc', sql]);
  const exists = (await psql(`SELECT 1 FROM pg_roles WHERE rolname = '${user}'`)).stdout.trim() === '1';
  if (!exists) await psql(`CREATE ROLE ${user} LOGIN CREATEDB PASSWORD '${password}'`);
  return {
    port,
    dataDir,
    user,
    password,
    restart: async () => void (await ctl('-w', '-m', 'fast', '-o', options, 'restart')),
    stop: async () => void (await ctl('-w', '-m', 'fast', 'stop').catch(() => undefined)),
  };
}
