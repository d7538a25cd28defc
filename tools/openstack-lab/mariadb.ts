/**
 * The lab's MariaDB: a private datadir, its own port on 127.0.0.1 and its own socket. (SQLite is no option: Keystone
 * under uwsgi fails with "SQLite objects created in a thread can only be used in that same thread".)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { capture, logTail, run, sleep, type ProcessSet, type Service } from './proc';

export const LAB_DATABASES = ['keystone', 'glance', 'placement', 'nova_api', 'nova', 'nova_cell0', 'neutron', 'cinder'];

export interface MariaDb {
  port: number;
  socket: string;
  service: Service;
  /** Runs SQL as root over the socket; returns the rows, tab-separated. */
  sql(query: string, database?: string): Promise<string>;
  /** Clean shutdown (what makes a datadir safe to copy). */
  shutdown(): Promise<void>;
}

function writeMyCnf(dir: string, datadir: string, port: number): string {
  const cnf = path.join(dir, 'my.cnf');
  // Durability is traded for speed (the lab's state is disposable); one connection pool per service process.
  writeFileSync(
    cnf,
    `[mariadbd]
datadir = ${datadir}
socket = ${path.join(dir, 'mysqld.sock')}
pid-file = ${path.join(dir, 'mysqld.pid')}
port = ${port}
bind-address = 127.0.0.1
user = root
skip-name-resolve
skip-log-bin
max_connections = 1000
innodb_buffer_pool_size = 128M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 0
innodb_flush_method = nosync
innodb_doublewrite = 0
sync_binlog = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
`,
  );
  return cnf;
}

/** A fresh datadir with the root account only (socket login). */
export async function installDatadir(dir: string, logFile: string): Promise<void> {
  const datadir = path.join(dir, 'data');
  mkdirSync(datadir, { recursive: true });
  const cnf = writeMyCnf(dir, datadir, 0);
  await run('mariadb-install-db', [`--defaults-file=${cnf}`, '--skip-test-db', '--auth-root-authentication-method=socket'], logFile);
}

export async function startMariaDb(procs: ProcessSet, dir: string, port: number): Promise<MariaDb> {
  const datadir = path.join(dir, 'data');
  const cnf = writeMyCnf(dir, datadir, port);
  const socket = path.join(dir, 'mysqld.sock');
  const service = procs.start('mariadb', 'mariadbd', [`--defaults-file=${cnf}`]);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (service.exitCode() !== null) throw new Error(`mariadb exited with ${service.exitCode()}:\n${logTail(service.logFile)}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) throw new Error(`mariadb did not listen on 127.0.0.1:${port}:\n${logTail(service.logFile)}`);
    await sleep(100);
  }
  const sql = (query: string, database?: string) =>
    capture('mariadb', [`--socket=${socket}`, '-uroot', '-N', '-B', ...(database ? [database] : [])], { input: query });
  return {
    port,
    socket,
    service,
    sql,
    async shutdown() {
      await capture('mariadb-admin', [`--socket=${socket}`, '-uroot', 'shutdown']);
      await service.exited;
    },
  };
}

/** The databases and the one account (TCP from 127.0.0.1) every service uses. */
export async function createDatabases(db: MariaDb, user: string, password: string): Promise<void> {
  const stmts = LAB_DATABASES.map((d) => `CREATE DATABASE IF NOT EXISTS ${d};`);
  stmts.push(`CREATE USER IF NOT EXISTS '${user}'@'127.0.0.1' IDENTIFIED BY '${password}';`);
  stmts.push(`GRANT ALL PRIVILEGES ON *.* TO '${user}'@'127.0.0.1';`);
  await db.sql(stmts.join('\n'));
}

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
