/**
 * LeafHasher on worker threads. SharedArrayBuffer-backed buffers (the engine's pool slots) are read in place by the
 * worker: nothing is moved or copied and the caller keeps using its Buffer. Other buffers are transferred (not
 * copied) to a worker and back when they own their whole ArrayBuffer; the rest are copied once. The worker source is inline JavaScript so it runs the same under tsx, jest
 * and compiled output, and it only does the primitive (zero check + BLAKE3 per slice), never the digest format.
 */
import { Worker } from 'node:worker_threads';
import { hashLeavesSync, type LeafHasher, type LeafHashes, type Slices } from './leaf-hasher';

const INLINE_BELOW_BYTES = 512 * 1024;

// The native BLAKE3 module is resolved here, where module resolution works, and loaded by path in the worker.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { blake3 } = require(${JSON.stringify(require.resolve('@napi-rs/blake-hash'))});
let zeros = Buffer.alloc(0);
const isZero = (b) => {
  if (zeros.length < b.length) zeros = Buffer.alloc(b.length);
  return b.equals(zeros.subarray(0, b.length));
};
parentPort.on('message', (m) => {
  try {
    const data = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
    const n = m.slices.length / 2;
    const digests = new Uint8Array(n * 32);
    const zeroMask = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const leaf = data.subarray(m.slices[2 * i], m.slices[2 * i + 1]);
      if (isZero(leaf)) { zeroMask[i] = 1; continue; }
      digests.set(blake3(leaf), i * 32);
    }
    const giveBack = m.keepData && !m.shared;
    const transfer = giveBack ? [m.buffer, digests.buffer] : [digests.buffer];
    parentPort.postMessage({ id: m.id, buffer: giveBack ? m.buffer : null, digests, zeroMask }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.stack || err) });
  }
});
`;

interface Reply {
  id: number;
  buffer: ArrayBuffer | null;
  digests: Uint8Array;
  zeroMask: Uint8Array;
  error?: string;
}

interface Pending {
  resolve: (r: LeafHashes) => void;
  reject: (e: Error) => void;
  byteOffset: number;
  byteLength: number;
  slices: number;
  /** The caller's own Buffer when it was shared with the worker (not moved). */
  shared?: Buffer;
}

class HashWorker {
  readonly pending = new Map<number, Pending>();
  private readonly worker: Worker;
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref(); // never keeps the process alive on its own
    this.worker.on('message', (reply: Reply) => this.settle(reply));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`digest worker exited (code ${code})`)));
  }

  get load(): number {
    return this.pending.size;
  }

  post(id: number, message: object, transfer: ArrayBuffer[], pending: Pending): void {
    if (this.failure) return pending.reject(this.failure);
    this.pending.set(id, pending);
    this.worker.postMessage(message, transfer);
  }

  terminate(): Promise<number> {
    this.failure ??= new Error('digest worker pool closed');
    return this.worker.terminate();
  }

  private settle(reply: Reply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.error) return p.reject(new Error(`digest worker failed: ${reply.error}`));
    const digests: Array<Buffer | undefined> = [];
    for (let i = 0; i < p.slices; i++) {
      digests.push(reply.zeroMask[i] ? undefined : Buffer.from(reply.digests.buffer, reply.digests.byteOffset + i * 32, 32));
    }
    const data = p.shared ?? (reply.buffer ? Buffer.from(reply.buffer, p.byteOffset, p.byteLength) : Buffer.alloc(0));
    p.resolve({ data, digests });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}

export class WorkerLeafHasher implements LeafHasher {
  private readonly workers: HashWorker[];
  private nextId = 1;
  private closed = false;

  constructor(threads: number) {
    this.workers = Array.from({ length: Math.max(1, threads) }, () => new HashWorker());
  }

  hash(data: Buffer, slices: Slices, keepData: boolean): Promise<LeafHashes> {
    // Below this much, a message to a thread and back costs more than hashing here (BLAKE3 does ~7 GB/s).
    let bytes = 0;
    for (const [start, end] of slices) bytes += end - start;
    if (this.closed) return Promise.reject(new Error('digest worker pool closed'));
    if (bytes <= INLINE_BELOW_BYTES) return Promise.resolve(hashLeavesSync(data, slices));
    if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) {
      // Shared memory: the worker reads it in place; the caller must not modify it until the promise settles.
      return this.post(data.buffer, data.byteOffset, data.byteLength, slices, keepData, [], data);
    }
    // The engine owns what a read returned, so a buffer that spans its whole ArrayBuffer is moved, not copied;
    // anything else (a view into a bigger or pooled allocation) is first copied into an ArrayBuffer of its own.
    const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    const movable = owned ? data : Buffer.from(new Uint8Array(data).buffer);
    const buffer = movable.buffer as ArrayBuffer;
    return this.post(buffer, movable.byteOffset, movable.byteLength, slices, keepData, [buffer]);
  }

  private post(
    buffer: ArrayBuffer | SharedArrayBuffer,
    byteOffset: number,
    byteLength: number,
    slices: Slices,
    keepData: boolean,
    transfer: ArrayBuffer[],
    shared?: Buffer,
  ): Promise<LeafHashes> {
    const flat = new Array<number>(slices.length * 2);
    slices.forEach(([s, e], i) => {
      flat[2 * i] = s;
      flat[2 * i + 1] = e;
    });
    const id = this.nextId++;
    const worker = this.workers.reduce((best, w) => (w.load < best.load ? w : best));
    return new Promise<LeafHashes>((resolve, reject) => {
      worker.post(
        id,
        { id, buffer, byteOffset, byteLength, slices: flat, keepData, shared: shared !== undefined },
        transfer,
        { resolve, reject, byteOffset, byteLength, slices: slices.length, shared },
      );
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
