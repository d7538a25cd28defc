/**
 * Incremental parser for the transmission-phase reply stream (simple replies and structured reply chunks).
 *
 * It never concatenates socket buffers: headers are gathered into one small scratch buffer and read payloads are
 * copied exactly once, straight into the destination the handler names. The caller may also let the kernel write a
 * payload directly into that destination (see directTarget/directFilled), skipping even that copy.
 * Nothing handed to feed() is retained, so the caller may reuse its read buffer.
 */
import { NbdError } from './nbd-errors';
import * as C from './protocol-constants';

export interface PayloadTarget {
  /** Payload bytes that follow the simple reply header (a successful read's length, else 0). */
  length: number;
  /** A view exactly `length` bytes long to copy the payload into, or null to discard it. */
  dest: Buffer | null;
}

export interface ReplyHandler {
  simpleReply(cookie: number, error: number): PayloadTarget;
  /** OFFSET_DATA chunk header: return a view of exactly `length` bytes for the data, or null to discard it. */
  dataChunk(cookie: number, flags: number, offset: number, length: number): Buffer | null;
  /** Any other structured chunk, with its whole payload (the Buffer is the handler's to keep). */
  chunk(cookie: number, flags: number, type: number, payload: Buffer): void;
  /** A simple reply (structured=false), or an OFFSET_DATA chunk, has been received completely. */
  payloadDone(cookie: number, flags: number, structured: boolean): void;
}

const enum State {
  Header,
  Payload,
  ChunkPayload,
}

const EMPTY = Buffer.alloc(0);
/** A non-data chunk (block status, error, hole) bigger than this is treated as a protocol violation. */
const MAX_CHUNK_PAYLOAD = 64 * 1024 * 1024;
const TWO_32 = 0x100000000;

export function protocolError(message: string): NbdError {
  return new NbdError(`NBD protocol error: ${message}`, { code: 'EPROTO' });
}

export class ReplyParser {
  private state = State.Header;
  private readonly hdr = Buffer.allocUnsafe(32);
  private hdrHave = 0;
  private hdrNeed = 4;
  private structured = false;
  private cookie = 0;
  private flags = 0;
  private type = 0;
  private chunkLength = 0;
  // Payload state (State.Payload: read data; State.ChunkPayload: other chunk payloads into chunkBuf)
  private dest: Buffer | null = null;
  private destPos = 0;
  private remaining = 0;
  private chunkBuf: Buffer = EMPTY;

  constructor(private readonly handler: ReplyHandler) {}

  /** Consume bytes [start, end) of buf. Throws NbdError (code EPROTO) on a malformed stream. */
  feed(buf: Buffer, start = 0, end = buf.length): void {
    let p = start;
    while (p < end) {
      if (this.state === State.Payload) {
        const n = Math.min(this.remaining, end - p);
        if (this.dest !== null) buf.copy(this.dest, this.destPos, p, p + n);
        p += n;
        this.advancePayload(n);
      } else if (this.state === State.ChunkPayload) {
        const n = Math.min(this.remaining, end - p);
        buf.copy(this.chunkBuf, this.destPos, p, p + n);
        p += n;
        this.destPos += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          const payload = this.chunkBuf;
          this.chunkBuf = EMPTY;
          this.reset();
          this.handler.chunk(this.cookie, this.flags, this.type, payload);
        }
      } else {
        const n = Math.min(this.hdrNeed - this.hdrHave, end - p);
        buf.copy(this.hdr, this.hdrHave, p, p + n);
        p += n;
        this.hdrHave += n;
        if (this.hdrHave === this.hdrNeed) this.headerStep();
      }
    }
  }

  /**
   * When the parser is in the middle of a read payload of at least `minBytes` that has a destination, the view the
   * remaining payload goes to; the caller may have the socket read straight into it and then call directFilled().
   */
  directTarget(minBytes: number): Buffer | null {
    if (this.state !== State.Payload || this.dest === null || this.remaining < minBytes) return null;
    return this.dest.subarray(this.destPos, this.destPos + this.remaining);
  }

  /** `n` bytes were written directly into the view returned by directTarget(). */
  directFilled(n: number): void {
    if (this.state !== State.Payload || n > this.remaining) throw protocolError('direct read out of step with the parser');
    this.advancePayload(n);
  }

  private advancePayload(n: number): void {
    this.destPos += n;
    this.remaining -= n;
    if (this.remaining === 0) {
      const { cookie, flags, structured } = this;
      this.dest = null;
      this.reset();
      this.handler.payloadDone(cookie, flags, structured);
    }
  }

  private reset(): void {
    this.state = State.Header;
    this.hdrHave = 0;
    this.hdrNeed = 4;
  }

  private readCookie(): number {
    return this.hdr.readUInt32BE(8) * TWO_32 + this.hdr.readUInt32BE(12);
  }

  private headerStep(): void {
    const h = this.hdr;
    if (this.hdrNeed === 4) {
      const magic = h.readUInt32BE(0);
      if (magic === C.NBD_SIMPLE_REPLY_MAGIC) {
        this.structured = false;
        this.hdrNeed = C.NBD_SIMPLE_REPLY_SIZE;
      } else if (magic === C.NBD_STRUCTURED_REPLY_MAGIC) {
        this.structured = true;
        this.hdrNeed = C.NBD_STRUCTURED_REPLY_SIZE;
      } else {
        throw protocolError(`bad reply magic 0x${magic.toString(16).padStart(8, '0')}`);
      }
      return;
    }

    if (!this.structured) {
      // Simple reply: magic(4) error(4) cookie(8)
      const error = h.readUInt32BE(4);
      this.cookie = this.readCookie();
      this.flags = 0;
      const t = this.handler.simpleReply(this.cookie, error);
      if (t.length > 0) {
        this.beginPayload(t.dest, t.length);
      } else {
        this.reset();
        this.handler.payloadDone(this.cookie, 0, false);
      }
      return;
    }

    if (this.hdrNeed === C.NBD_STRUCTURED_REPLY_SIZE) {
      // Structured chunk: magic(4) flags(2) type(2) cookie(8) length(4)
      this.flags = h.readUInt16BE(4);
      this.type = h.readUInt16BE(6);
      this.cookie = this.readCookie();
      this.chunkLength = h.readUInt32BE(16);
      if (this.type === C.NBD_REPLY_TYPE_OFFSET_DATA) {
        if (this.chunkLength < 8) throw protocolError(`OFFSET_DATA chunk of ${this.chunkLength} bytes`);
        this.hdrNeed = C.NBD_STRUCTURED_REPLY_SIZE + 8; // the data's offset follows
        return;
      }
      if (this.chunkLength === 0) {
        this.reset();
        this.handler.chunk(this.cookie, this.flags, this.type, EMPTY);
        return;
      }
      if (this.chunkLength > MAX_CHUNK_PAYLOAD) {
        throw protocolError(`structured reply chunk type ${this.type} of ${this.chunkLength} bytes is too large`);
      }
      this.state = State.ChunkPayload;
      this.chunkBuf = Buffer.allocUnsafe(this.chunkLength);
      this.destPos = 0;
      this.remaining = this.chunkLength;
      return;
    }

    // OFFSET_DATA with its 8-byte offset
    const offset = h.readUInt32BE(20) * TWO_32 + h.readUInt32BE(24);
    const length = this.chunkLength - 8;
    const dest = this.handler.dataChunk(this.cookie, this.flags, offset, length);
    if (length > 0) {
      this.beginPayload(dest, length);
    } else {
      this.reset();
      this.handler.payloadDone(this.cookie, this.flags, true);
    }
  }

  private beginPayload(dest: Buffer | null, length: number): void {
    if (dest !== null && dest.length !== length) {
      throw new Error(`reply handler returned a ${dest.length}-byte destination for a ${length}-byte payload`);
    }
    this.state = State.Payload;
    this.dest = dest;
    this.destPos = 0;
    this.remaining = length;
  }
}
