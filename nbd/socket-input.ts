/**
 * Routes bytes read from the NBD socket: first to a small queue the handshake reads from, then to the reply parser.
 *
 * The socket is created with Node's `onread` option, so reads land in one reusable buffer instead of a fresh Buffer
 * per chunk; while a large read payload is arriving, the socket reads straight into the caller's result buffer.
 */
import { NbdError } from './nbd-errors';
import type { ReplyParser } from './reply-parser';

/** Size of the reusable read buffer. */
const READ_BUFFER_SIZE = 1024 * 1024;
/** Payload remainders at least this long are read straight into their destination. */
const DIRECT_READ_MIN = 64 * 1024;

interface Waiter {
  n: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

/** Byte queue with exact-length async reads, for the (small, sequential) handshake. */
export class HandshakeReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiter: Waiter | null = null;
  private failure: Error | null = null;

  /** Data must already be a private copy. */
  push(data: Buffer): void {
    this.chunks.push(data);
    this.have += data.length;
    this.wake();
  }

  fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.wake();
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('concurrent handshake reads'));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.wake();
    });
  }

  /** Whatever was received but not consumed by the handshake. */
  takeRest(): Buffer[] {
    const rest = this.chunks;
    this.chunks = [];
    this.have = 0;
    return rest;
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.have >= w.n) {
      this.waiter = null;
      w.resolve(this.take(w.n));
    } else if (this.failure) {
      this.waiter = null;
      w.reject(this.failure);
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length === n) {
      this.chunks.shift();
      this.have -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.have -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let pos = 0;
    while (pos < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - pos);
      c.copy(out, pos, 0, k);
      pos += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.have -= n;
    return out;
  }
}

/** The `onread` buffer/callback pair for net.connect, switching from handshake to reply parsing. */
export class InputRouter {
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  private lastGiven: Buffer = this.readBuffer;
  private parser: ReplyParser | null = null;
  private stopped = false;
  readonly handshake = new HandshakeReader();
  /** Called when the parser throws (malformed stream); the connection must be torn down. */
  onParseError: (err: NbdError) => void = () => {};

  /** onread.buffer: where the next socket read goes. */
  nextBuffer = (): Buffer => {
    const direct = this.parser !== null && !this.stopped ? this.parser.directTarget(DIRECT_READ_MIN) : null;
    this.lastGiven = direct ?? this.readBuffer;
    return this.lastGiven;
  };

  /** onread.callback */
  onRead = (n: number, buf: Uint8Array): boolean => {
    if (this.stopped || n <= 0) return true;
    try {
      if (this.parser === null) {
        this.handshake.push(Buffer.from(buf.subarray(0, n))); // copy: the read buffer is reused
      } else if (this.lastGiven !== this.readBuffer && buf.buffer === this.lastGiven.buffer && buf.byteOffset === this.lastGiven.byteOffset) {
        this.parser.directFilled(n);
      } else {
        const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
        this.parser.feed(b, 0, n);
      }
    } catch (err) {
      this.stopped = true;
      this.onParseError(err instanceof NbdError ? err : new NbdError(String((err as Error)?.message ?? err), { code: 'EPROTO', cause: err }));
    }
    return true;
  };

  /** Switch to transmission: feed leftover handshake bytes, then everything else, to the parser. */
  attachParser(parser: ReplyParser): void {
    this.parser = parser;
    for (const chunk of this.handshake.takeRest()) {
      if (this.stopped) break;
      try {
        parser.feed(chunk);
      } catch (err) {
        this.stopped = true;
        this.onParseError(err as NbdError);
      }
    }
  }

  /** Ignore any further input (the connection is being torn down). */
  stop(): void {
    this.stopped = true;
  }
}
