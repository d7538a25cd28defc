import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { discoveredMachineSchema, type DiscoveredMachine } from './discovered-machine';
import { SessionTokenError, verifySessionToken, type AgentSessionClaims } from './session-token';

/**
 * Where agents connect to, from the source network outwards: a TLS listener in a worker. An enrolled agent opens a
 * control connection (requests and console messages, JSON lines) and keeps idle connections per disk. A local NBD
 * client (the copy engine, libguestfs) connects to the disk's Unix socket here; the gateway then takes one idle
 * connection of that disk, tells the agent to start ("G"), and joins the two. So the workers read an agent's disk
 * through the same NBD client, copy engine and verification as a vSphere disk.
 */

interface Hello {
  token: string;
  role: 'control' | 'disk';
  disk?: number;
  runId: string;
  machine?: unknown;
}

/** The agent of a machine, as one run (boot) of it is connected now. */
export interface AgentSession {
  readonly machineId: string;
  readonly migrationId: string;
  readonly runId: string;
  readonly machine: DiscoveredMachine;
  readonly alive: boolean;
  /** Resolves when the control connection ends (the agent rebooted, the network dropped). */
  readonly ended: Promise<void>;
  /** A Unix socket path that serves the disk over NBD (one agent connection per client connection). */
  diskSocket(disk: number): string;
  /** SHA-256 per segment of a range of the disk, computed by the agent on the machine. */
  digestRange(disk: number, range: { offset: number; length: number; segment: number }, signal?: AbortSignal): Promise<string[]>;
  /** Bytes the agent served for the destination in this run (data replies). */
  servedBytes(): Promise<number>;
  /** A line on the machine's console. */
  tell(text: string): void;
}

export class AgentNotConnectedError extends Error {
  override name = 'AgentNotConnectedError';
}

/** How long a local NBD client waits for an idle agent connection of its disk. */
const TAKE_TIMEOUT_MS = 30_000;
/** How long one control request may take: a digest of a few GiB read on a slow machine. */
const REQUEST_TIMEOUT_MS = 30 * 60_000;

class LiveSession implements AgentSession {
  alive = true;
  readonly ended: Promise<void>;
  private endNow!: () => void;
  private readonly idle = new Map<number, tls.TLSSocket[]>();
  private readonly takers = new Map<number, Array<(s: tls.TLSSocket) => void>>();
  private readonly servers = new Map<number, { server: net.Server; socketPath: string }>();
  private readonly requests = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private buffered = '';

  constructor(
    readonly claims: AgentSessionClaims,
    readonly machine: DiscoveredMachine,
    private readonly control: tls.TLSSocket,
    private readonly socketDir: string,
    private readonly logger: Logger,
  ) {
    this.ended = new Promise((resolve) => (this.endNow = resolve));
    control.setEncoding('utf8');
    control.on('data', (chunk: string) => this.onControlData(chunk));
    control.on('close', () => this.end('the agent closed its control connection'));
    control.on('error', () => undefined);
  }

  get machineId() {
    return this.claims.machineId;
  }
  get migrationId() {
    return this.claims.migrationId;
  }
  get runId() {
    return this.claims.runId;
  }

  private onControlData(chunk: string) {
    this.buffered += chunk;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      const pending = typeof msg.id === 'number' ? this.requests.get(msg.id) : undefined;
      if (!pending) continue;
      this.requests.delete(msg.id as number);
      if (typeof msg.error === 'string') pending.reject(new Error(`the agent could not do it: ${msg.error}`));
      else pending.resolve(msg);
    }
    if (this.buffered.length > 16 << 20) this.control.destroy();
  }

  end(why: string) {
    if (!this.alive) return;
    this.alive = false;
    this.logger.info({ machineId: this.machineId, runId: this.runId, why }, 'agent session ended');
    this.control.destroy();
    for (const conns of this.idle.values()) for (const c of conns) c.destroy();
    this.idle.clear();
    for (const { server, socketPath } of this.servers.values()) {
      server.close();
      rmSync(socketPath, { force: true });
    }
    this.servers.clear();
    for (const r of this.requests.values()) r.reject(new AgentNotConnectedError(`the agent of machine ${this.machineId} disconnected (${why})`));
    this.requests.clear();
    this.endNow();
  }

  addIdle(disk: number, conn: tls.TLSSocket) {
    if (!this.alive) {
      conn.destroy();
      return;
    }
    const waiting = this.takers.get(disk);
    const taker = waiting?.shift();
    if (taker) return taker(conn);
    const list = this.idle.get(disk) ?? [];
    list.push(conn);
    this.idle.set(disk, list);
    conn.once('close', () => {
      const l = this.idle.get(disk);
      if (l) this.idle.set(disk, l.filter((c) => c !== conn));
    });
  }

  private take(disk: number): Promise<tls.TLSSocket> {
    const list = this.idle.get(disk) ?? [];
    const conn = list.shift();
    if (conn) return Promise.resolve(conn);
    return new Promise((resolve, reject) => {
      const waiting = this.takers.get(disk) ?? [];
      const timer = setTimeout(() => {
        this.takers.set(disk, (this.takers.get(disk) ?? []).filter((t) => t !== taker));
        reject(new AgentNotConnectedError(`no connection for disk ${disk} from the agent of machine ${this.machineId} within ${TAKE_TIMEOUT_MS} ms`));
      }, TAKE_TIMEOUT_MS);
      const taker = (c: tls.TLSSocket) => {
        clearTimeout(timer);
        resolve(c);
      };
      waiting.push(taker);
      this.takers.set(disk, waiting);
    });
  }

  diskSocket(disk: number): string {
    if (!this.alive) throw new AgentNotConnectedError(`the agent of machine ${this.machineId} is not connected`);
    if (!this.machine.disks.some((d) => d.index === disk)) throw new Error(`machine ${this.machineId} has no disk ${disk}`);
    const existing = this.servers.get(disk);
    if (existing) return existing.socketPath;
    const socketPath = path.join(this.socketDir, `${this.machineId.slice(2, 12)}-${this.runId.slice(0, 6)}-d${disk}.sock`);
    rmSync(socketPath, { force: true });
    const server = net.createServer((local) => {
      local.pause();
      local.on('error', () => undefined);
      this.take(disk).then(
        (remote) => {
          if (local.destroyed) return this.addIdle(disk, remote);
          remote.write('G');
          local.pipe(remote);
          remote.pipe(local);
          remote.resume();
          local.resume();
          const close = () => {
            local.destroy();
            remote.destroy();
          };
          local.once('close', close);
          remote.once('close', close);
          remote.on('error', () => undefined);
        },
        () => local.destroy(),
      );
    });
    server.listen(socketPath);
    this.servers.set(disk, { server, socketPath });
    return socketPath;
  }

  private request(op: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>> {
    if (!this.alive) return Promise.reject(new AgentNotConnectedError(`the agent of machine ${this.machineId} is not connected`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(id);
        reject(new Error(`the agent of machine ${this.machineId} did not answer ${String(op.op)} within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      const onAbort = () => {
        clearTimeout(timer);
        this.requests.delete(id);
        reject(signal!.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.requests.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      this.control.write(JSON.stringify({ ...op, id }) + '\n');
    });
  }

  async digestRange(disk: number, range: { offset: number; length: number; segment: number }, signal?: AbortSignal): Promise<string[]> {
    const answer = await this.request({ op: 'digest', disk, ...range }, signal);
    const digests = answer.digests;
    if (!Array.isArray(digests) || !digests.every((d) => typeof d === 'string' && /^[0-9a-f]{64}$/.test(d))) throw new Error('the agent answered a digest request with something else');
    return digests as string[];
  }

  async servedBytes(): Promise<number> {
    const answer = await this.request({ op: 'ping' });
    return Number(answer.servedBytes ?? 0);
  }

  tell(text: string) {
    if (this.alive) this.control.write(JSON.stringify({ op: 'message', text }) + '\n');
  }
}

export interface AgentGatewayOptions {
  cert: string;
  key: string;
  sessionKey: Buffer;
  logger: Logger;
}

export class AgentGateway {
  private readonly sessions = new Map<string, LiveSession>();
  private readonly waiters = new Map<string, Array<() => void>>();
  /** Disk connections that arrived before their run's control connection. */
  private readonly early = new Map<string, Array<{ disk: number; conn: tls.TLSSocket }>>();
  private readonly server: tls.Server;
  private readonly socketDir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-gw-'));

  constructor(private readonly opts: AgentGatewayOptions) {
    this.server = tls.createServer({ cert: opts.cert, key: opts.key, minVersion: 'TLSv1.2' }, (conn) => this.onConnection(conn));
    this.server.on('tlsClientError', () => undefined);
  }

  listen(port: number, host = '0.0.0.0'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve((this.server.address() as net.AddressInfo).port));
    });
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) s.end('the worker is stopping');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socketDir, { recursive: true, force: true });
  }

  /** The machine's live session now, if its agent is connected. */
  current(machineId: string): AgentSession | undefined {
    const s = this.sessions.get(machineId);
    return s?.alive ? s : undefined;
  }

  /** The machine's live session; waits for the agent to connect (or connect again) up to `timeoutMs`. */
  async session(machineId: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<AgentSession> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      opts.signal?.throwIfAborted();
      const s = this.sessions.get(machineId);
      if (s?.alive) return s;
      const left = deadline - Date.now();
      if (left <= 0) throw new AgentNotConnectedError(`the agent of machine ${machineId} is not connected to this worker's gateway`);
      // Woken by the agent connecting, the signal, or every few seconds to look again.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', done);
          const list = this.waiters.get(machineId)?.filter((w) => w !== done);
          if (list?.length) this.waiters.set(machineId, list);
          else this.waiters.delete(machineId);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 5000));
        opts.signal?.addEventListener('abort', done, { once: true });
        this.waiters.set(machineId, [...(this.waiters.get(machineId) ?? []), done]);
      });
    }
  }

  private onConnection(conn: tls.TLSSocket) {
    conn.setKeepAlive(true, 15_000);
    conn.on('error', () => undefined);
    let head = '';
    const timer = setTimeout(() => conn.destroy(), 30_000);
    const onData = (chunk: Buffer) => {
      head += chunk.toString('utf8');
      const nl = head.indexOf('\n');
      if (nl < 0) {
        if (head.length > 1 << 20) conn.destroy();
        return;
      }
      clearTimeout(timer);
      conn.off('data', onData);
      conn.pause();
      this.onHello(conn, head.slice(0, nl));
    };
    conn.on('data', onData);
  }

  private refuse(conn: tls.TLSSocket, error: string) {
    conn.end(JSON.stringify({ ok: false, error }) + '\n');
  }

  private onHello(conn: tls.TLSSocket, line: string) {
    let hello: Hello;
    let claims: AgentSessionClaims;
    try {
      hello = JSON.parse(line);
      claims = verifySessionToken(String(hello.token ?? ''), this.opts.sessionKey);
    } catch (err) {
      return this.refuse(conn, err instanceof SessionTokenError ? err.message : 'not a vmigrate agent hello');
    }
    if (hello.runId !== claims.runId) return this.refuse(conn, 'the session token belongs to another run of the agent: enroll again');
    if (hello.role === 'control') {
      const machine = discoveredMachineSchema.safeParse(hello.machine);
      if (!machine.success) return this.refuse(conn, `the machine report is not valid: ${machine.error.issues[0]?.message}`);
      this.sessions.get(claims.machineId)?.end('the agent connected again');
      const session = new LiveSession(claims, machine.data, conn, this.socketDir, this.opts.logger);
      this.sessions.set(claims.machineId, session);
      void session.ended.then(() => {
        if (this.sessions.get(claims.machineId) === session) this.sessions.delete(claims.machineId);
      });
      conn.write(JSON.stringify({ ok: true }) + '\n');
      conn.resume();
      this.opts.logger.info({ machineId: claims.machineId, migrationId: claims.migrationId, runId: claims.runId }, 'agent connected');
      for (const e of this.early.get(`${claims.machineId}/${claims.runId}`) ?? []) session.addIdle(e.disk, e.conn);
      this.early.delete(`${claims.machineId}/${claims.runId}`);
      for (const w of [...(this.waiters.get(claims.machineId) ?? [])]) w();
      return;
    }
    if (hello.role !== 'disk' || !Number.isInteger(hello.disk)) return this.refuse(conn, 'unknown connection role');
    conn.write(JSON.stringify({ ok: true }) + '\n');
    const session = this.sessions.get(claims.machineId);
    if (session?.alive && session.runId === claims.runId) return session.addIdle(hello.disk!, conn);
    const key = `${claims.machineId}/${claims.runId}`;
    const list = this.early.get(key) ?? [];
    list.push({ disk: hello.disk!, conn });
    this.early.set(key, list);
    conn.once('close', () => this.early.set(key, (this.early.get(key) ?? []).filter((e) => e.conn !== conn)));
  }
}
