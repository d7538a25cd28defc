/**
 * NBD client (transmission phase) implementing the copy engine's BlockSource.
 *
 * Many requests may be in flight on one connection; replies are matched by cookie. Reads larger than the server's
 * maximum payload are split, each piece landing directly in its slice of one result buffer.
 */
import * as net from 'node:net';
import type { BlockSource, Extent } from '../copy/block-device';
import { negotiate, type BlockSizeInfo, type HandshakeResult } from './handshake';
import { describeErrno, errnoName, NbdAbortError, NbdError } from './nbd-errors';
import * as C from './protocol-constants';
import { protocolError, ReplyParser, type PayloadTarget, type ReplyHandler } from './reply-parser';
import { InputRouter } from './socket-input';

export { NbdError, NbdAbortError } from './nbd-errors';

export interface NbdConnectOptions {
  /** Unix socket path; or host (+ port, default 10809) for TCP. */
  socketPath?: string;
  host?: string;
  port?: number;
  /** Default "". */
  exportName?: string;
  /** Default true; used when the server offers it. */
  structuredReplies?: boolean;
  /** Covers connecting and the handshake. Default 30 s. */
  connectTimeoutMs?: number;
  /** Upper bound for one request's payload, below the server's own maximum (mainly for tests). */
  maxRequestSize?: number;
}

const DEFAULT_CONNECT_TIMEOUT = 30_000;
/** One NBD_CMD_BLOCK_STATUS asks about at most this much (the reply may cover less). */
const MAX_BLOCK_STATUS_REQUEST = 0x80000000;
const CLOSE_TIMEOUT = 5_000;
const TWO_32 = 0x100000000;

interface ReadOp {
  offset: number;
  length: number;
  buf: Buffer;
  outstanding: number;
  settled: boolean;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Pending {
  cookie: number;
  cmd: number;
  offset: number;
  length: number;
  /** Reads: the operation and where this request's bytes start in op.buf. */
  op?: ReadOp;
  base: number;
  /** Bytes covered by data/hole chunks (reads). */
  covered: number;
  /** Block status: descriptors for base:allocation. */
  extents?: Extent[];
  error: NbdError | null;
  finish: (p: Pending) => void;
}

function describeTarget(opts: NbdConnectOptions): string {
  if (opts.socketPath) return `unix:${opts.socketPath}`;
  return `tcp:${opts.host ?? 'localhost'}:${opts.port ?? 10809}`;
}

export class NbdClient implements BlockSource {
  readonly size: number;
  readonly canMultiConn: boolean;
  readonly canBlockStatus: boolean;
  readonly readOnly: boolean;
  /** Whether structured replies were negotiated. */
  readonly structuredReplies: boolean;
  readonly transmissionFlags: number;
  readonly blockSize: BlockSizeInfo | null;
  /** Largest payload this client puts in one request. */
  readonly maxRequestSize: number;
  /** "unix:/path" or "tcp:host:port". */
  readonly target: string;
  /** Server refusals of optional features during the handshake. */
  readonly handshakeNotes: readonly string[];

  private readonly pending = new Map<number, Pending>();
  private nextCookie = 1;
  private failure: NbdError | null = null;
  private closing: Promise<void> | null = null;
  private readonly closed: Promise<void>;
  private readonly minBlock: number;
  private readonly baseAllocationId: number | null;
  private outBatch: Buffer[] = [];
  private flushScheduled = false;
  private lastSocketError: Error | null = null;

  static async connect(opts: NbdConnectOptions): Promise<NbdClient> {
    const target = describeTarget(opts);
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT;
    const input = new InputRouter();
    const onread = { buffer: input.nextBuffer, callback: input.onRead };
    const socket = opts.socketPath
      ? net.connect({ path: opts.socketPath, onread })
      : net.connect({ host: opts.host ?? 'localhost', port: opts.port ?? 10809, onread });

    let connected = false;
    let failure: NbdError | null = null;
    const fail = (err: NbdError) => {
      if (failure) return;
      failure = err;
      input.handshake.fail(err);
      socket.destroy();
    };
    const timer = setTimeout(() => {
      fail(
        new NbdError(`timed out after ${timeoutMs} ms ${connected ? 'in the NBD handshake with' : 'connecting to NBD server at'} ${target}`, {
          code: 'ETIMEDOUT',
        }),
      );
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      if (!connected) {
        fail(new NbdError(`cannot connect to NBD server at ${target}: ${err.message}`, { code: err.code ?? 'ECONNREFUSED', cause: err }));
      } else {
        fail(new NbdError(`connection to NBD server at ${target} failed during the handshake: ${err.message}`, { code: err.code ?? 'ECONNRESET', cause: err }));
      }
    };
    const onClose = () => {
      fail(new NbdError(`NBD server at ${target} closed the connection during the handshake`, { code: 'ECONNRESET' }));
    };
    socket.on('error', onError);
    socket.on('close', onClose);

    try {
      await new Promise<void>((resolve, reject) => {
        const onEarlyClose = () => reject(failure);
        socket.once('close', onEarlyClose);
        socket.once('connect', () => {
          connected = true;
          socket.off('close', onEarlyClose);
          resolve();
        });
      });
      if (!opts.socketPath) socket.setNoDelay(true);
      const result = await negotiate(
        { read: (n) => input.handshake.read(n), write: (b) => void socket.write(b) },
        { exportName: opts.exportName ?? '', structuredReplies: opts.structuredReplies ?? true, target },
      );
      if (failure) throw failure;
      socket.off('error', onError);
      socket.off('close', onClose);
      return new NbdClient(socket, input, result, target, opts);
    } catch (err) {
      const e = err instanceof NbdError ? err : new NbdError(`NBD handshake with ${target} failed: ${(err as Error)?.message ?? err}`, { cause: err });
      if (!failure && connected && !socket.destroyed) {
        // The server refused something while still haggling: soft disconnect with NBD_OPT_ABORT.
        input.stop();
        const abort = Buffer.alloc(16);
        abort.writeBigUInt64BE(C.NBD_IHAVEOPT, 0);
        abort.writeUInt32BE(C.NBD_OPT_ABORT, 8);
        socket.end(abort);
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private constructor(
    private readonly socket: net.Socket,
    private readonly input: InputRouter,
    hs: HandshakeResult,
    target: string,
    opts: NbdConnectOptions,
  ) {
    this.target = target;
    this.size = hs.size;
    this.transmissionFlags = hs.transmissionFlags;
    this.canMultiConn = (hs.transmissionFlags & C.NBD_FLAG_CAN_MULTI_CONN) !== 0;
    this.readOnly = (hs.transmissionFlags & C.NBD_FLAG_READ_ONLY) !== 0;
    this.structuredReplies = hs.structuredReplies;
    this.baseAllocationId = hs.baseAllocationId;
    this.canBlockStatus = hs.structuredReplies && hs.baseAllocationId !== null;
    this.blockSize = hs.blockSize;
    this.handshakeNotes = hs.notes;
    this.minBlock = hs.blockSize && hs.blockSize.minimum > 1 ? hs.blockSize.minimum : 1;

    let max = hs.blockSize && hs.blockSize.maximum > 0 ? hs.blockSize.maximum : C.DEFAULT_MAX_REQUEST;
    if (opts.maxRequestSize && opts.maxRequestSize > 0) max = Math.min(max, opts.maxRequestSize);
    max = Math.min(max, 0xffffffff);
    if (this.minBlock > 1) max -= max % this.minBlock;
    this.maxRequestSize = Math.max(max, this.minBlock);

    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (err) => {
      this.lastSocketError = err;
    });
    socket.on('close', () => {
      const why = this.closing
        ? `connection to ${target} was closed by the client`
        : `NBD server at ${target} closed the connection` + (this.lastSocketError ? ` (${this.lastSocketError.message})` : '');
      this.fail(new NbdError(why, { code: this.closing ? 'NBD_CLOSED' : 'ECONNRESET', cause: this.lastSocketError ?? undefined }));
    });
    input.onParseError = (err) => this.fail(err);
    input.attachParser(new ReplyParser(this.handler));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Public API

  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    const bad = this.checkRange('read', offset, length);
    if (bad) return Promise.reject(bad);
    if (signal?.aborted) return Promise.reject(this.abortError(offset, length, signal));
    if (length === 0) return Promise.resolve(Buffer.alloc(0));

    // Requests must be aligned to the server's minimum block size: widen, then slice.
    if (this.minBlock > 1 && (offset % this.minBlock !== 0 || length % this.minBlock !== 0)) {
      const start = offset - (offset % this.minBlock);
      const end = Math.min(this.size, Math.ceil((offset + length) / this.minBlock) * this.minBlock);
      return this.readAligned(start, end - start, signal).then((b) => b.subarray(offset - start, offset - start + length));
    }
    return this.readAligned(offset, length, signal);
  }

  /** Like read(), but into the caller's (reusable) buffer; once settled, nothing more lands in `dest`. */
  readInto(offset: number, dest: Buffer, signal?: AbortSignal): Promise<void> {
    const length = dest.length;
    const bad = this.checkRange('read', offset, length);
    if (bad) return Promise.reject(bad);
    if (signal?.aborted) return Promise.reject(this.abortError(offset, length, signal));
    if (length === 0) return Promise.resolve();
    if (this.minBlock > 1 && (offset % this.minBlock !== 0 || length % this.minBlock !== 0)) {
      return this.read(offset, length, signal).then((b) => void b.copy(dest));
    }
    return this.readAligned(offset, length, signal, dest).then(() => undefined);
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    const bad = this.checkRange('block-status', offset, length);
    if (bad) throw bad;
    if (length === 0) return [];
    if (!this.canBlockStatus) return [{ offset, length, zero: false }];

    let reqLen = Math.min(length, MAX_BLOCK_STATUS_REQUEST);
    if (this.minBlock > 1 && reqLen < length) reqLen -= reqLen % this.minBlock;
    const list = await new Promise<Extent[]>((resolve, reject) => {
      this.submit(C.NBD_CMD_BLOCK_STATUS, offset, reqLen, undefined, 0, (p) => {
        if (p.error) reject(p.error);
        else if (!p.extents) {
          reject(new NbdError(`NBD server at ${this.target} sent no base:allocation status for offset ${offset} length ${reqLen}`, { code: 'EPROTO', offset, length: reqLen }));
        } else resolve(p.extents);
      });
    });
    return list;
  }

  /** Send NBD_CMD_DISC and close the socket. Requests still in flight are rejected (code NBD_CLOSED). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (!this.failure && !this.socket.destroyed) {
        this.sendRequest(C.NBD_CMD_DISC, 0, 0, 0);
        this.flushRequests();
        this.socket.end();
        const timer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT);
        await this.closed;
        clearTimeout(timer);
      } else {
        this.socket.destroy();
        await this.closed;
      }
    })();
    return this.closing;
  }

  /** The connection failed or was closed: every further request fails. */
  get broken(): boolean {
    return this.failure !== null || this.closing !== null;
  }

  /** Number of requests awaiting replies. */
  get inFlight(): number {
    return this.pending.size;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests

  private checkRange(what: string, offset: number, length: number): NbdError | null {
    if (this.failure) {
      return new NbdError(`${what} at offset ${offset} length ${length} not sent: ${this.failure.message}`, {
        code: this.failure.code,
        offset,
        length,
        cause: this.failure,
      });
    }
    if (this.closing) return new NbdError(`${what} at offset ${offset} length ${length}: client is closed`, { code: 'NBD_CLOSED', offset, length });
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      return new NbdError(`${what} at offset ${offset} length ${length} is outside the export (size ${this.size})`, {
        code: 'EINVAL',
        offset,
        length,
      });
    }
    return null;
  }

  private abortError(offset: number, length: number, signal: AbortSignal): NbdAbortError {
    return new NbdAbortError(`read at offset ${offset} length ${length} from ${this.target} was aborted`, {
      offset,
      length,
      cause: signal.reason,
    });
  }

  private readAligned(offset: number, length: number, signal?: AbortSignal, dest?: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const op: ReadOp = {
        offset,
        length,
        buf: dest ?? Buffer.allocUnsafe(length),
        outstanding: 0,
        settled: false,
        resolve,
        reject,
        signal,
      };
      const finish = (p: Pending) => {
        if (op.settled) return;
        if (p.error) {
          this.settleRead(op, p.error);
        } else if (--op.outstanding === 0) {
          this.settleRead(op, null);
        }
      };
      const max = this.maxRequestSize;
      for (let pos = 0; pos < length; pos += max) {
        op.outstanding++;
        this.submit(C.NBD_CMD_READ, offset + pos, Math.min(max, length - pos), op, pos, finish);
      }
      if (signal) {
        op.onAbort = () => this.settleRead(op, this.abortError(offset, length, signal));
        signal.addEventListener('abort', op.onAbort, { once: true });
      }
    });
  }

  private settleRead(op: ReadOp, err: Error | null): void {
    if (op.settled) return;
    op.settled = true;
    if (op.signal && op.onAbort) op.signal.removeEventListener('abort', op.onAbort);
    if (err) op.reject(err);
    else op.resolve(op.buf);
  }

  private submit(cmd: number, offset: number, length: number, op: ReadOp | undefined, base: number, finish: (p: Pending) => void): void {
    const cookie = this.nextCookie++;
    this.pending.set(cookie, { cookie, cmd, offset, length, op, base, covered: 0, error: null, finish });
    this.sendRequest(cmd, cookie, offset, length);
  }

  private sendRequest(cmd: number, cookie: number, offset: number, length: number): void {
    const b = Buffer.allocUnsafe(C.NBD_REQUEST_SIZE);
    b.writeUInt32BE(C.NBD_REQUEST_MAGIC, 0);
    b.writeUInt16BE(0, 4); // command flags
    b.writeUInt16BE(cmd, 6);
    b.writeUInt32BE(Math.floor(cookie / TWO_32), 8);
    b.writeUInt32BE(cookie >>> 0, 12);
    b.writeUInt32BE(Math.floor(offset / TWO_32), 16);
    b.writeUInt32BE(offset >>> 0, 20);
    b.writeUInt32BE(length, 24);
    this.outBatch.push(b);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flushRequests());
    }
  }

  /** Requests issued in one tick go out in one write. */
  private flushRequests(): void {
    this.flushScheduled = false;
    const batch = this.outBatch;
    if (batch.length === 0) return;
    this.outBatch = [];
    if (this.socket.destroyed) return;
    this.socket.write(batch.length === 1 ? batch[0] : Buffer.concat(batch));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Replies

  private lookup(cookie: number): Pending {
    const p = this.pending.get(cookie);
    if (!p) throw protocolError(`reply for unknown cookie ${cookie} from ${this.target}`);
    return p;
  }

  private complete(p: Pending): void {
    this.pending.delete(p.cookie);
    if (!p.error && p.cmd === C.NBD_CMD_READ && p.covered !== p.length) {
      p.error = new NbdError(
        `NBD server at ${this.target} answered read at offset ${p.offset} length ${p.length} with only ${p.covered} bytes`,
        { code: 'EPROTO', offset: p.offset, length: p.length },
      );
    }
    p.finish(p);
  }

  private serverError(p: Pending, errno: number, message?: string, errOffset?: number): NbdError {
    const what = C.COMMAND_NAMES[p.cmd] ?? `command ${p.cmd}`;
    const at = errOffset !== undefined ? ` (error at offset ${errOffset})` : '';
    const msg = message ? `: ${message}` : '';
    return new NbdError(`NBD ${what} at offset ${p.offset} length ${p.length} failed: ${describeErrno(errno)}${at}${msg} [${this.target}]`, {
      errno,
      code: errnoName(errno),
      offset: p.offset,
      length: p.length,
    });
  }

  private readDest(p: Pending, offset: number, length: number): Buffer | null {
    if (p.cmd !== C.NBD_CMD_READ || !p.op) throw protocolError(`data chunk in reply to ${C.COMMAND_NAMES[p.cmd]} (cookie ${p.cookie})`);
    if (offset < p.offset || offset + length > p.offset + p.length) {
      throw protocolError(`chunk [${offset}, +${length}) outside read at offset ${p.offset} length ${p.length}`);
    }
    p.covered += length;
    if (p.op.settled || p.error) return null;
    const start = p.base + (offset - p.offset);
    return p.op.buf.subarray(start, start + length);
  }

  private readonly handler: ReplyHandler = {
    simpleReply: (cookie: number, error: number): PayloadTarget => {
      const p = this.lookup(cookie);
      if (error !== 0) {
        p.error = this.serverError(p, error);
        return { length: 0, dest: null };
      }
      if (p.cmd === C.NBD_CMD_READ) return { length: p.length, dest: this.readDest(p, p.offset, p.length) };
      return { length: 0, dest: null };
    },

    dataChunk: (cookie: number, _flags: number, offset: number, length: number): Buffer | null => {
      return this.readDest(this.lookup(cookie), offset, length);
    },

    payloadDone: (cookie: number, flags: number, structured: boolean): void => {
      const p = this.lookup(cookie);
      if (!structured || flags & C.NBD_REPLY_FLAG_DONE) this.complete(p);
    },

    chunk: (cookie: number, flags: number, type: number, payload: Buffer): void => {
      const p = this.lookup(cookie);
      switch (type) {
        case C.NBD_REPLY_TYPE_NONE:
          break;
        case C.NBD_REPLY_TYPE_OFFSET_HOLE: {
          if (payload.length !== 12) throw protocolError(`OFFSET_HOLE chunk of ${payload.length} bytes`);
          const off = payload.readUInt32BE(0) * TWO_32 + payload.readUInt32BE(4);
          const len = payload.readUInt32BE(8);
          const dest = this.readDest(p, off, len);
          if (dest) dest.fill(0);
          break;
        }
        case C.NBD_REPLY_TYPE_BLOCK_STATUS:
          this.onBlockStatus(p, payload);
          break;
        default:
          if (type & C.NBD_REPLY_TYPE_ERROR_BIT) {
            this.onErrorChunk(p, type, payload);
          } else {
            throw protocolError(`unexpected structured reply type ${type} for ${C.COMMAND_NAMES[p.cmd]} (cookie ${cookie})`);
          }
      }
      if (flags & C.NBD_REPLY_FLAG_DONE) this.complete(p);
    },
  };

  private onErrorChunk(p: Pending, type: number, payload: Buffer): void {
    let errno = 5; // EIO when the chunk is too short to say
    let message: string | undefined;
    let errOffset: number | undefined;
    if (payload.length >= 4) errno = payload.readUInt32BE(0) || 5;
    if (payload.length >= 6) {
      const mlen = payload.readUInt16BE(4);
      if (6 + mlen <= payload.length) message = payload.toString('utf8', 6, 6 + mlen).trim() || undefined;
      if (type === C.NBD_REPLY_TYPE_ERROR_OFFSET && 6 + mlen + 8 <= payload.length) {
        errOffset = payload.readUInt32BE(6 + mlen) * TWO_32 + payload.readUInt32BE(6 + mlen + 4);
      }
    }
    if (!p.error) p.error = this.serverError(p, errno, message, errOffset);
  }

  private onBlockStatus(p: Pending, payload: Buffer): void {
    if (p.cmd !== C.NBD_CMD_BLOCK_STATUS) throw protocolError(`block status chunk in reply to ${C.COMMAND_NAMES[p.cmd]}`);
    if (payload.length < 4 || (payload.length - 4) % 8 !== 0) throw protocolError(`BLOCK_STATUS chunk of ${payload.length} bytes`);
    if (payload.readUInt32BE(0) !== this.baseAllocationId) return; // another context: not ours
    const out: Extent[] = [];
    const end = p.offset + p.length;
    let pos = p.offset;
    for (let i = 4; i < payload.length && pos < end; i += 8) {
      const len = Math.min(payload.readUInt32BE(i), end - pos); // the last extent may run past the request
      if (len === 0) continue;
      const zero = (payload.readUInt32BE(i + 4) & C.NBD_STATE_ZERO) !== 0;
      const last = out[out.length - 1];
      if (last && last.zero === zero) last.length += len;
      else out.push({ offset: pos, length: len, zero });
      pos += len;
    }
    if (out.length === 0) throw protocolError(`empty block status reply for offset ${p.offset} length ${p.length}`);
    p.extents = out;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Failure

  /** Tear the connection down and reject every request in flight. */
  private fail(err: NbdError): void {
    if (this.failure) return;
    this.failure = err;
    this.input.stop();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      const what = C.COMMAND_NAMES[p.cmd] ?? `command ${p.cmd}`;
      p.error = new NbdError(`NBD ${what} at offset ${p.offset} length ${p.length} failed: ${err.message}`, {
        code: err.code,
        offset: p.offset,
        length: p.length,
        cause: err,
      });
      p.finish(p);
    }
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
