/**
 * NBD handshake: oldstyle, newstyle and fixed newstyle negotiation, option haggling
 * (NBD_OPT_STRUCTURED_REPLY, NBD_OPT_SET_META_CONTEXT "base:allocation", NBD_OPT_GO with
 * NBD_INFO_BLOCK_SIZE) and the fallbacks when a server refuses an option.
 */
import { NbdError } from './nbd-errors';
import * as C from './protocol-constants';

/** Byte-exact reads from and writes to the connection during the handshake. */
export interface HandshakeIO {
  read(n: number): Promise<Buffer>;
  write(data: Buffer): void;
}

export interface HandshakeOptions {
  exportName: string;
  structuredReplies: boolean;
  /** Human description of the server ("unix:/run/x.sock"), used in error messages. */
  target: string;
}

export interface BlockSizeInfo {
  minimum: number;
  preferred: number;
  maximum: number;
}

export interface HandshakeResult {
  style: 'oldstyle' | 'newstyle' | 'fixed-newstyle';
  size: number;
  /** Transmission flags (0 when the server did not set NBD_FLAG_HAS_FLAGS). */
  transmissionFlags: number;
  structuredReplies: boolean;
  /** Context id the server assigned to base:allocation, or null when not negotiated. */
  baseAllocationId: number | null;
  /** From NBD_INFO_BLOCK_SIZE, or null when the server sent none. */
  blockSize: BlockSizeInfo | null;
  description?: string;
  /** Why an optional feature was not negotiated (server refusals), for logging. */
  notes: string[];
}

/** Longest option reply payload we accept (the spec caps strings at 4 KiB; INFO replies are tiny). */
const MAX_OPTION_REPLY = 1 << 20;

interface OptionReply {
  type: number;
  data: Buffer;
}

function handshakeError(target: string, message: string, code = 'EPROTO', cause?: unknown): NbdError {
  return new NbdError(`NBD handshake with ${target} failed: ${message}`, { code, cause });
}

function optName(opt: number): string {
  return C.OPTION_NAMES[opt] ?? `option ${opt}`;
}

function describeReplyError(reply: OptionReply): { name: string; text: string } {
  const info = C.REP_ERR_INFO[reply.type];
  const name = info ? info[0] : `NBD_REP_ERR 0x${reply.type.toString(16)}`;
  const meaning = info ? info[1] : 'unknown error';
  const serverMsg = reply.data.length > 0 ? reply.data.toString('utf8').replace(/[\0\r\n]+/g, ' ').trim() : '';
  return { name, text: `${name} (${meaning})${serverMsg ? `: ${serverMsg}` : ''}` };
}

function isError(type: number): boolean {
  return type >= C.NBD_REP_FLAG_ERROR;
}

function encodeString(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

function toSafeNumber(v: bigint, what: string, target: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw handshakeError(target, `${what} ${v} is too large`);
  return Number(v);
}

class Negotiator {
  private readonly notes: string[] = [];

  constructor(
    private readonly io: HandshakeIO,
    private readonly opts: HandshakeOptions,
  ) {}

  private sendOption(opt: number, data: Buffer = Buffer.alloc(0)): void {
    const hdr = Buffer.allocUnsafe(16);
    hdr.writeBigUInt64BE(C.NBD_IHAVEOPT, 0);
    hdr.writeUInt32BE(opt, 8);
    hdr.writeUInt32BE(data.length, 12);
    this.io.write(data.length ? Buffer.concat([hdr, data]) : hdr);
  }

  private async readOptionReply(opt: number): Promise<OptionReply> {
    const hdr = await this.io.read(20);
    const magic = hdr.readBigUInt64BE(0);
    if (magic !== C.NBD_REP_MAGIC) {
      throw handshakeError(this.opts.target, `bad option reply magic 0x${magic.toString(16)} to ${optName(opt)}`);
    }
    const replyOpt = hdr.readUInt32BE(8);
    if (replyOpt !== opt) {
      throw handshakeError(this.opts.target, `server replied to ${optName(replyOpt)} while we sent ${optName(opt)}`);
    }
    const type = hdr.readUInt32BE(12);
    const len = hdr.readUInt32BE(16);
    if (len > MAX_OPTION_REPLY) throw handshakeError(this.opts.target, `option reply of ${len} bytes is too long`);
    const data = len > 0 ? await this.io.read(len) : Buffer.alloc(0);
    return { type, data };
  }

  async run(): Promise<HandshakeResult> {
    const { target } = this.opts;
    const first = await this.io.read(16);
    if (first.readBigUInt64BE(0) !== C.NBD_MAGIC) {
      throw handshakeError(target, 'not an NBD server (bad initial magic)');
    }
    const second = first.readBigUInt64BE(8);
    if (second === C.NBD_CLISERV_MAGIC) return this.oldstyle();
    if (second !== C.NBD_IHAVEOPT) throw handshakeError(target, `unknown handshake magic 0x${second.toString(16)}`);

    const hflags = (await this.io.read(2)).readUInt16BE(0);
    const fixed = (hflags & C.NBD_FLAG_FIXED_NEWSTYLE) !== 0;
    const noZeroes = (hflags & C.NBD_FLAG_NO_ZEROES) !== 0;
    const cflags = Buffer.allocUnsafe(4);
    cflags.writeUInt32BE((fixed ? C.NBD_FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? C.NBD_FLAG_C_NO_ZEROES : 0), 0);
    this.io.write(cflags);

    if (!fixed) {
      this.notes.push('server does not support fixed newstyle negotiation; options skipped');
      const r = await this.exportName(noZeroes);
      return { style: 'newstyle', ...r, structuredReplies: false, baseAllocationId: null, blockSize: null, notes: this.notes };
    }

    let structured = false;
    if (this.opts.structuredReplies) structured = await this.structuredReply();
    const baseAllocationId = structured ? await this.setMetaContext() : null;
    const go = await this.go();
    if (go) {
      return { style: 'fixed-newstyle', ...go, structuredReplies: structured, baseAllocationId, notes: this.notes };
    }
    const r = await this.exportName(noZeroes);
    return { style: 'fixed-newstyle', ...r, structuredReplies: structured, baseAllocationId, blockSize: null, notes: this.notes };
  }

  private async oldstyle(): Promise<HandshakeResult> {
    const b = await this.io.read(8 + 4 + 124);
    const size = toSafeNumber(b.readBigUInt64BE(0), 'export size', this.opts.target);
    const flags = b.readUInt32BE(8) & 0xffff;
    this.notes.push('oldstyle server: export name, structured replies and block status unavailable');
    return {
      style: 'oldstyle',
      size,
      transmissionFlags: flags & C.NBD_FLAG_HAS_FLAGS ? flags : 0,
      structuredReplies: false,
      baseAllocationId: null,
      blockSize: null,
      notes: this.notes,
    };
  }

  private async structuredReply(): Promise<boolean> {
    this.sendOption(C.NBD_OPT_STRUCTURED_REPLY);
    for (;;) {
      const r = await this.readOptionReply(C.NBD_OPT_STRUCTURED_REPLY);
      if (r.type === C.NBD_REP_ACK) return true;
      if (isError(r.type)) {
        this.checkShutdown(r);
        this.notes.push(`structured replies refused: ${describeReplyError(r).text}`);
        return false;
      }
      // Unknown non-error reply types before the final one are ignored.
    }
  }

  private async setMetaContext(): Promise<number | null> {
    const name = encodeString(this.opts.exportName);
    const query = encodeString(C.NBD_META_BASE_ALLOCATION);
    const count = Buffer.allocUnsafe(4);
    count.writeUInt32BE(1, 0);
    this.sendOption(C.NBD_OPT_SET_META_CONTEXT, Buffer.concat([name, count, query]));
    let id: number | null = null;
    for (;;) {
      const r = await this.readOptionReply(C.NBD_OPT_SET_META_CONTEXT);
      if (r.type === C.NBD_REP_ACK) break;
      if (isError(r.type)) {
        this.checkShutdown(r);
        this.notes.push(`base:allocation refused: ${describeReplyError(r).text}`);
        return null;
      }
      if (r.type === C.NBD_REP_META_CONTEXT && r.data.length >= 4) {
        const ctxName = r.data.toString('utf8', 4);
        if (ctxName === C.NBD_META_BASE_ALLOCATION) id = r.data.readUInt32BE(0);
      }
    }
    if (id === null) this.notes.push('server has no base:allocation meta context');
    return id;
  }

  /** NBD_OPT_GO; resolves null when the server does not know the option (caller falls back to EXPORT_NAME). */
  private async go(): Promise<{ size: number; transmissionFlags: number; blockSize: BlockSizeInfo | null; description?: string } | null> {
    const { target, exportName } = this.opts;
    const name = encodeString(exportName);
    const infos = Buffer.allocUnsafe(4);
    infos.writeUInt16BE(1, 0);
    infos.writeUInt16BE(C.NBD_INFO_BLOCK_SIZE, 2);
    this.sendOption(C.NBD_OPT_GO, Buffer.concat([name, infos]));

    let size: number | null = null;
    let transmissionFlags = 0;
    let blockSize: BlockSizeInfo | null = null;
    let description: string | undefined;
    for (;;) {
      const r = await this.readOptionReply(C.NBD_OPT_GO);
      if (r.type === C.NBD_REP_ACK) break;
      if (isError(r.type)) {
        if (r.type === C.NBD_REP_ERR_UNSUP) {
          this.notes.push('NBD_OPT_GO unsupported; fell back to NBD_OPT_EXPORT_NAME');
          return null;
        }
        const { name: code, text } = describeReplyError(r);
        throw handshakeError(target, `server refused export ${JSON.stringify(exportName)}: ${text}`, code);
      }
      if (r.type !== C.NBD_REP_INFO || r.data.length < 2) continue;
      const infoType = r.data.readUInt16BE(0);
      if (infoType === C.NBD_INFO_EXPORT && r.data.length >= 12) {
        size = toSafeNumber(r.data.readBigUInt64BE(2), 'export size', target);
        const flags = r.data.readUInt16BE(10);
        transmissionFlags = flags & C.NBD_FLAG_HAS_FLAGS ? flags : 0;
      } else if (infoType === C.NBD_INFO_BLOCK_SIZE && r.data.length >= 14) {
        blockSize = {
          minimum: r.data.readUInt32BE(2),
          preferred: r.data.readUInt32BE(6),
          maximum: r.data.readUInt32BE(10),
        };
      } else if (infoType === C.NBD_INFO_DESCRIPTION) {
        description = r.data.toString('utf8', 2);
      }
    }
    if (size === null) throw handshakeError(target, 'server acknowledged NBD_OPT_GO without sending NBD_INFO_EXPORT');
    return { size, transmissionFlags, blockSize, description };
  }

  private async exportName(noZeroes: boolean): Promise<{ size: number; transmissionFlags: number }> {
    this.sendOption(C.NBD_OPT_EXPORT_NAME, Buffer.from(this.opts.exportName, 'utf8'));
    let b: Buffer;
    try {
      b = await this.io.read(noZeroes ? 10 : 134);
    } catch (err) {
      throw handshakeError(
        this.opts.target,
        `server closed the connection after NBD_OPT_EXPORT_NAME (does export ${JSON.stringify(this.opts.exportName)} exist?)`,
        'NBD_REP_ERR_UNKNOWN',
        err,
      );
    }
    const size = toSafeNumber(b.readBigUInt64BE(0), 'export size', this.opts.target);
    const flags = b.readUInt16BE(8);
    return { size, transmissionFlags: flags & C.NBD_FLAG_HAS_FLAGS ? flags : 0 };
  }

  private checkShutdown(r: OptionReply): void {
    if (r.type === C.NBD_REP_ERR_SHUTDOWN || r.type === C.NBD_REP_ERR_TLS_REQD) {
      const { name, text } = describeReplyError(r);
      throw handshakeError(this.opts.target, text, name);
    }
  }
}

export function negotiate(io: HandshakeIO, opts: HandshakeOptions): Promise<HandshakeResult> {
  return new Negotiator(io, opts).run();
}
