/**
 * Launches nbdkit as a child process serving one export on a private Unix socket.
 *
 * Secrets: never pass a secret literally on a command line (it is visible in /proc/PID/cmdline and `ps`). Callers
 * should pass secrets as `+FILE` params (nbdkit reads `cookie=+FILE`, `password=+FILE`, `proxy-password=+FILE`
 * from a 0600 file). As a safety net, a literal value for one of those keys is written here to a 0600 file in a
 * private 0700 directory and passed as `key=+FILE`; the file is deleted by stop(). Values of secret-looking keys
 * (password, cookie, secret, token, header) are redacted from stderrTail, the onStderr callback and error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface NbdkitFilter {
  name: string;
  params?: Record<string, string>;
}

export interface NbdkitOptions {
  /** 'file' | 'curl' | 'vddk' | 'memory' | ... */
  plugin: string;
  /** e.g. { file: '/path' } or { url, cookie: '+/path/cookiefile', sslverify: 'false' } */
  params: Record<string, string>;
  /** Applied in order (first = closest to the client), e.g. [{ name: 'error', params: { 'error-pread-rate': '0.1' } }] */
  filters?: NbdkitFilter[];
  /** Default true (-r). */
  readOnly?: boolean;
  /** Where the Unix socket goes; default a fresh private mkdtemp directory (removed by stop()). */
  socketDir?: string;
  /** Default 'nbdkit'. */
  nbdkitPath?: string;
  /** Inserted before the plugin name, e.g. ['--threads=8'] or ['-v']. */
  extraArgs?: string[];
  /** How long to wait for nbdkit to become ready. Default 30 s. */
  startTimeoutMs?: number;
  /** Each line nbdkit writes to stderr, redacted. */
  onStderr?: (line: string) => void;
  /** Environment for nbdkit (default: inherited). */
  env?: NodeJS.ProcessEnv;
}

export interface NbdkitExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NbdkitProcess {
  socketPath: string;
  pid: number;
  /** nbd+unix:///?socket=... for tools such as nbdcopy/nbdinfo. */
  readonly uri: string;
  /** The command line, with secret values redacted. */
  readonly commandLine: string;
  /** SIGTERM (then SIGKILL after 5 s), wait for exit, remove the files we created. Idempotent. */
  stop(): Promise<void>;
  /** Last few KiB of nbdkit's stderr, with secret values redacted. */
  readonly stderrTail: string;
  /** Settles when nbdkit exits (for whatever reason). */
  readonly exited: Promise<NbdkitExit>;
}

export class NbdkitError extends Error {
  code: string;
  stderrTail: string;
  constructor(message: string, code: string, stderrTail: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NbdkitError';
    this.code = code;
    this.stderrTail = stderrTail;
  }
}

/** Params whose values are never logged. */
const SECRET_KEY = /password|cookie|secret|token|header|authorization/i;
/** Params nbdkit reads via nbdkit_read_password, so `+FILE` works. */
const SPILLABLE_KEYS = new Set(['password', 'cookie', 'proxy-password']);
const STDERR_TAIL_BYTES = 16 * 1024;
const STOP_GRACE_MS = 5_000;
const POLL_MS = 20;
const MAX_SOCKET_PATH = 107;

function isFileOrFdRef(value: string): boolean {
  return value.startsWith('+') || value === '-' || /^-\d+$/.test(value);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

class Redactor {
  private readonly literals: string[] = [];
  private readonly keyPattern: RegExp | null;
  /** nbdkit -v logs "config key=cookie, value=...". */
  private readonly debugPattern: RegExp | null;

  constructor(keys: string[], values: string[]) {
    // Longest first so a secret containing another is fully replaced.
    this.literals = [...new Set(values.filter((v) => v.length >= 4))].sort((a, b) => b.length - a.length);
    const uniq = [...new Set(keys)];
    const alt = uniq.map(escapeRegExp).join('|');
    this.keyPattern = uniq.length ? new RegExp(`\\b(${alt})=("[^"]*"|'[^']*'|\\S+)`, 'gi') : null;
    this.debugPattern = uniq.length ? new RegExp(`(key=(?:${alt}), value=)[^\\n]*`, 'gi') : null;
  }

  redact(text: string): string {
    let out = text;
    for (const v of this.literals) out = out.split(v).join('***');
    if (this.debugPattern) out = out.replace(this.debugPattern, '$1***');
    if (this.keyPattern) out = out.replace(this.keyPattern, '$1=***');
    return out;
  }
}

function validateKey(key: string, where: string): void {
  if (!key || key.includes('=') || /\s/.test(key)) throw new NbdkitError(`invalid nbdkit ${where} parameter name ${JSON.stringify(key)}`, 'EINVAL', '');
}

export async function startNbdkit(opts: NbdkitOptions): Promise<NbdkitProcess> {
  const nbdkitPath = opts.nbdkitPath ?? 'nbdkit';
  const readOnly = opts.readOnly ?? true;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const filters = opts.filters ?? [];

  // Collect key=value params, spilling literal secrets to files.
  const secretKeys: string[] = [];
  const secretValues: string[] = [];
  const cleanupPaths: string[] = []; // removed (recursively) after exit
  let secretDir: string | null = null;
  const paramArgs: string[] = [];

  const ownSocketDir = !opts.socketDir;
  const socketDir = opts.socketDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'vmigrate-nbdkit-')));
  if (ownSocketDir) cleanupPaths.push(socketDir);

  try {
    const addParams = async (params: Record<string, string> | undefined, where: string) => {
      for (const [key, value] of Object.entries(params ?? {})) {
        validateKey(key, where);
        let v = String(value);
        if (SECRET_KEY.test(key)) {
          secretKeys.push(key);
          if (!isFileOrFdRef(v)) {
            secretValues.push(v);
            if (SPILLABLE_KEYS.has(key.toLowerCase())) {
              if (!secretDir) {
                secretDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmigrate-nbdkit-secret-'));
                await fsp.chmod(secretDir, 0o700);
                cleanupPaths.push(secretDir);
              }
              const file = path.join(secretDir, `${key}-${secretValues.length}`);
              await fsp.writeFile(file, v, { mode: 0o600 });
              v = `+${file}`;
            }
          }
        }
        paramArgs.push(`${key}=${v}`);
      }
    };
    await addParams(opts.params, opts.plugin);
    for (const f of filters) await addParams(f.params, `${f.name} filter`);
  } catch (err) {
    await removeAll(cleanupPaths);
    throw err;
  }
  const redactor = new Redactor(secretKeys, secretValues);

  const id = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const socketPath = path.join(socketDir, ownSocketDir ? 'nbdkit.sock' : `nbdkit-${id}.sock`);
  const pidFile = path.join(socketDir, ownSocketDir ? 'nbdkit.pid' : `nbdkit-${id}.pid`);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    await removeAll(cleanupPaths);
    throw new NbdkitError(`nbdkit socket path is too long for a Unix socket: ${socketPath}`, 'ENAMETOOLONG', '');
  }
  if (!ownSocketDir) cleanupPaths.push(pidFile, socketPath);

  const args = [
    '--foreground',
    '--exit-with-parent',
    '-U',
    socketPath,
    '-P',
    pidFile,
    ...(readOnly ? ['-r'] : []),
    ...filters.map((f) => `--filter=${f.name}`),
    ...(opts.extraArgs ?? []),
    opts.plugin,
    ...paramArgs,
  ];
  const commandLine = redactor.redact([nbdkitPath, ...args].join(' '));

  const child: ChildProcess = spawn(nbdkitPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env ?? process.env });

  let tail = '';
  let partialLine = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    tail += s;
    if (tail.length > STDERR_TAIL_BYTES) {
      // Cut at a line boundary so no secret is left half-redacted at the start of the tail.
      tail = tail.slice(-STDERR_TAIL_BYTES);
      const nl = tail.indexOf('\n');
      tail = nl >= 0 ? tail.slice(nl + 1) : '';
    }
    if (opts.onStderr) {
      const lines = (partialLine + s).split('\n');
      partialLine = lines.pop() ?? '';
      for (const line of lines) if (line) opts.onStderr(redactor.redact(line));
    }
  });
  const stderrTail = () => redactor.redact(tail);

  let spawnError: Error | null = null;
  let exitInfo: NbdkitExit | null = null;
  const exited = new Promise<NbdkitExit>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) {
        exitInfo = { code: null, signal: null };
        resolve(exitInfo);
      }
    });
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      if (opts.onStderr && partialLine) opts.onStderr(redactor.redact(partialLine));
      resolve(exitInfo);
    });
  });
  // Files are removed once nbdkit has gone, however it went.
  const cleaned = exited.then(() => removeAll(cleanupPaths));

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    if (!stopping) {
      stopping = (async () => {
        if (!exitInfo) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
          await exited;
          clearTimeout(timer);
        }
        await cleaned;
      })();
    }
    return stopping;
  };

  // Wait for the pidfile (written once nbdkit accepts connections), early exit, or timeout.
  const started = Date.now();
  for (;;) {
    if (spawnError && child.pid === undefined) {
      await cleaned;
      const e = spawnError as NodeJS.ErrnoException;
      throw new NbdkitError(`cannot start ${nbdkitPath}: ${e.message}`, e.code ?? 'ENOENT', '', e);
    }
    if (exitInfo) {
      await cleaned;
      const { code, signal } = exitInfo as NbdkitExit;
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      const err = stderrTail().trim();
      throw new NbdkitError(`nbdkit ${how} before it was ready: ${err || '(no stderr output)'}\ncommand: ${commandLine}`, 'NBDKIT_EXIT', err);
    }
    const pid = await readPid(pidFile);
    if (pid) break;
    if (Date.now() - started > timeoutMs) {
      await stop();
      const err = stderrTail().trim();
      throw new NbdkitError(`nbdkit was not ready after ${timeoutMs} ms${err ? `: ${err}` : ''}\ncommand: ${commandLine}`, 'ETIMEDOUT', err);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }

  return {
    socketPath,
    pid: child.pid!,
    uri: `nbd+unix:///?socket=${encodeURIComponent(socketPath).replace(/%2F/g, '/')}`,
    commandLine,
    stop,
    get stderrTail() {
      return stderrTail();
    },
    exited,
  };
}

async function readPid(pidFile: string): Promise<number | null> {
  try {
    const text = await fsp.readFile(pidFile, 'utf8');
    const pid = Number.parseInt(text.trim(), 10);
    return Number.isInteger(pid) && pid > 0 && text.endsWith('\n') ? pid : null;
  } catch {
    return null;
  }
}

async function removeAll(paths: string[]): Promise<void> {
  await Promise.all(paths.map((p) => fsp.rm(p, { recursive: true, force: true }).catch(() => undefined)));
}
