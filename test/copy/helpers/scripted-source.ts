/**
 * Test-only BlockSource over an in-memory disk with a declared allocation map, plus the misbehaviours the engine
 * must cope with: partial extent answers, out-of-order completion (random delays), and failing after N bytes.
 */
import type { BlockSource, Extent } from '../../../copy/block-device';

export interface ScriptedSourceOptions {
  /** Extents per extents() answer (partial answers force the engine to loop). Default: all. */
  maxExtentsPerAnswer?: number;
  /** Random 0..maxDelayMs per read, so reads finish out of order. */
  maxDelayMs?: number;
  /** Reads fail once this many bytes have been read in total. */
  failAfterBytes?: number;
  /** Run when cumulative bytes read cross this value (e.g. abort a controller). */
  onBytesRead?: (total: number) => void;
  /** Reads at or beyond `offset` wait for `until`: what happens mid-copy is then not left to the scheduler. */
  holdReadsFrom?: { offset: number; until: Promise<unknown> };
}

export class ScriptedSource implements BlockSource {
  readonly size: number;
  readonly reads: Array<{ offset: number; length: number }> = [];
  bytesRead = 0;
  extentCalls = 0;
  closed = false;

  constructor(
    private readonly content: Buffer,
    private readonly allocation: readonly Extent[],
    private readonly opts: ScriptedSourceOptions = {},
  ) {
    this.size = content.length;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    if (this.opts.holdReadsFrom && offset >= this.opts.holdReadsFrom.offset) await this.opts.holdReadsFrom.until;
    if (offset < 0 || offset + length > this.size) throw new Error(`read beyond end: ${offset}+${length} > ${this.size}`);
    if (this.opts.failAfterBytes !== undefined && this.bytesRead + length > this.opts.failAfterBytes) {
      throw new Error(`injected source failure at offset ${offset}`);
    }
    this.bytesRead += length;
    this.reads.push({ offset, length });
    this.opts.onBytesRead?.(this.bytesRead);
    if (this.opts.maxDelayMs) {
      const ms = Math.random() * this.opts.maxDelayMs;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal?.reason);
        };
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    return Buffer.from(this.content.subarray(offset, offset + length));
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    this.extentCalls++;
    const end = offset + length;
    const out: Extent[] = [];
    for (const e of this.allocation) {
      if (e.offset + e.length <= offset || e.offset >= end) continue;
      const start = Math.max(e.offset, offset);
      out.push({ offset: start, length: Math.min(e.offset + e.length, end) - start, zero: e.zero });
      if (out.length === (this.opts.maxExtentsPerAnswer ?? Infinity)) break;
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
