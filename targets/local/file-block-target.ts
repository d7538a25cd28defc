/**
 * A volume's raw file as a BlockTarget: positional I/O, fdatasync flushes, holes reported for verification.
 *
 * Bulk I/O bypasses the page cache (O_DIRECT) when it can: buffered writes into a fresh sparse file cost ~2.3 s of
 * kernel time per GiB, direct ones ~0.3 s, and real targets (attached block devices) want direct I/O anyway. Direct
 * I/O needs the file offset, the length and the memory address aligned; Node cannot tell a Buffer's address, so
 * only memory handed out by allocateIoBuffer() (aligned by probing, see below) goes direct, and only its whole
 * DIRECT_ALIGN pages. Everything else (other callers' buffers, the unaligned head/tail of a range) uses the buffered
 * fd. A page is therefore written direct only by a write that covers all of it, while a partly covered page always
 * goes through the page cache, so two non-overlapping writes never mix the two paths on one page. For overlapping
 * writes done one after the other the kernel keeps both paths coherent (a direct write/read first writes back and
 * then invalidates the cached pages of its range). Without O_DIRECT (open fails, e.g. some tmpfs/FUSE) everything
 * is buffered, as before.
 */
import * as fsSync from 'node:fs';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';
import * as path from 'node:path';
import type { Extent } from '../../copy/block-device';
import type { AllocationAwareTarget } from '../../copy/allocation-aware-target';
import { fileAllocationMap } from './file-allocation-map';

const runTool = promisify(execFile);

/** File offsets, lengths and memory addresses of direct I/O are multiples of this. */
export const DIRECT_ALIGN = 4096;
/** Candidate address steps for the probe: every allocation is at least 16-byte aligned. */
const PROBE_STEP = 16;

export interface FileBlockTargetOptions {
  /** false: never use O_DIRECT (default true: use it when the filesystem supports it). */
  directIo?: boolean;
  /**
   * The file may be larger than `expectedSize` and only its first `expectedSize` bytes are the disk (a cloud volume
   * allocated in whole GiB for a disk that is not). Default false: the length must be exact.
   */
  leadingPart?: boolean;
}

export class FileBlockTarget implements AllocationAwareTarget {
  private closed = false;
  /** ArrayBuffers from allocateIoBuffer → a byteOffset in them whose address is aligned for this file's direct I/O. */
  private readonly alignedAt = new WeakMap<ArrayBufferLike, number>();
  /** Fd of a scratch file (already unlinked) next to the volume, opened O_DIRECT: probes memory alignment. */
  private probeFd: number | undefined | null = undefined;
  private lastProbeOffset = 0;

  private constructor(
    readonly filePath: string,
    readonly size: number,
    private readonly file: fs.FileHandle,
    /** Same file opened O_DIRECT; undefined when unsupported, disabled, or dropped after an unexpected EINVAL. */
    private direct: fs.FileHandle | undefined,
  ) {}

  /** Opens an existing file read-write; its length must be `expectedSize` (a volume never changes size). */
  static async open(filePath: string, expectedSize: number, options: FileBlockTargetOptions = {}): Promise<FileBlockTarget> {
    const file = await fs.open(filePath, 'r+');
    const st = await file.stat();
    // A block device (a volume attached to a worker server) has no file length: ask the kernel for its size.
    const size = st.isBlockDevice() ? await blockDeviceSize(filePath) : st.size;
    if (options.leadingPart ? size < expectedSize : size !== expectedSize) {
      await file.close();
      throw new Error(`volume file ${filePath} is ${size} bytes, expected ${options.leadingPart ? 'at least ' : ''}${expectedSize}`);
    }
    let direct: fs.FileHandle | undefined;
    if (options.directIo !== false && fsSync.constants.O_DIRECT !== undefined) {
      direct = await fs.open(filePath, fsSync.constants.O_RDWR | fsSync.constants.O_DIRECT).catch(() => undefined);
    }
    return new FileBlockTarget(filePath, expectedSize, file, direct);
  }

  /** Whether bulk I/O currently bypasses the page cache. */
  get directIo(): boolean {
    return this.direct !== undefined;
  }

  /**
   * A SharedArrayBuffer-backed buffer of `size` bytes that this target can write from / read into with O_DIRECT
   * (its start and every DIRECT_ALIGN step from it are aligned). Without direct I/O, or if the alignment cannot be
   * established, it is a plain shared buffer (then all I/O on it is buffered).
   */
  allocateIoBuffer(size: number): Buffer {
    const shared = new SharedArrayBuffer(size + DIRECT_ALIGN);
    const at = this.direct ? this.probeAlignedOffset(Buffer.from(shared)) : undefined;
    if (at === undefined) return Buffer.from(shared, 0, size);
    this.alignedAt.set(shared, at);
    return Buffer.from(shared, at, size);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    await this.transfer('write', offset, data);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, out: Buffer): Promise<void> {
    await this.transfer('read', offset, out);
  }

  /** The aligned middle of `buf` goes through the O_DIRECT fd when it can; the unaligned head and tail are buffered. */
  private async transfer(op: 'read' | 'write', offset: number, buf: Buffer): Promise<void> {
    this.checkRange(op, offset, buf.length);
    const buffered = (at: number, part: Buffer) => (op === 'write' ? this.writeBuffered(at, part) : this.readBuffered(at, part));
    const [head, tail] = this.directSpan(offset, buf);
    if (head > 0) await buffered(offset, buf.subarray(0, head));
    if (tail > head) {
      const mid = buf.subarray(head, tail);
      if (!(await this.transferDirect(op, offset + head, mid))) await buffered(offset + head, mid);
    }
    if (buf.length > tail) await buffered(offset + tail, buf.subarray(tail));
  }

  /** Durable: both fds (fdatasync is per inode, but the contract is "everything written through either"). */
  async flush(): Promise<void> {
    await this.file.datasync();
    await this.direct?.datasync();
  }

  /** Holes and data of [offset, offset+length); all data when the filesystem cannot tell. */
  async extents(offset: number, length: number): Promise<Extent[]> {
    this.checkRange('map', offset, length);
    const end = offset + length;
    const map = (await fileAllocationMap(this.filePath, this.size)) ?? [{ offset: 0, length: this.size, zero: false }];
    return map
      .filter((e) => e.offset < end && e.offset + e.length > offset)
      .map((e) => {
        const start = Math.max(e.offset, offset);
        return { offset: start, length: Math.min(e.offset + e.length, end) - start, zero: e.zero };
      });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (typeof this.probeFd === 'number') fsSync.closeSync(this.probeFd);
    this.probeFd = null;
    const direct = this.direct;
    this.direct = undefined;
    await Promise.all([this.file.close(), direct?.close()]);
  }

  /**
   * [head, tail): the bytes of `buf` (at file `offset`) that can go direct: whole aligned pages whose memory is
   * aligned too. [0, 0) when none can.
   */
  private directSpan(offset: number, buf: Buffer): [number, number] {
    const base = this.direct ? this.alignedAt.get(buf.buffer) : undefined;
    if (base === undefined) return [0, 0];
    // File offset x sits at byteOffset buf.byteOffset + (x - offset); both must be aligned at once.
    if ((((buf.byteOffset - base - offset) % DIRECT_ALIGN) + DIRECT_ALIGN) % DIRECT_ALIGN !== 0) return [0, 0];
    const head = Math.min(buf.length, (DIRECT_ALIGN - (offset % DIRECT_ALIGN)) % DIRECT_ALIGN);
    const tail = head + Math.floor((buf.length - head) / DIRECT_ALIGN) * DIRECT_ALIGN;
    return tail > head ? [head, tail] : [0, 0];
  }

  /**
   * Direct I/O of an aligned range. false (nothing done) if the kernel refuses it (EINVAL: alignment rules we did
   * not anticipate); direct I/O is then dropped for good and the caller does it buffered.
   */
  private async transferDirect(op: 'read' | 'write', offset: number, buf: Buffer): Promise<boolean> {
    const direct = this.direct;
    if (!direct) return false;
    let done = 0;
    try {
      while (done < buf.length) {
        const n =
          op === 'write'
            ? (await direct.write(buf, done, buf.length - done, offset + done)).bytesWritten
            : (await direct.read(buf, done, buf.length - done, offset + done)).bytesRead;
        if (n === 0) throw new Error(`unexpected end of ${this.filePath} at ${offset + done} (size ${this.size})`);
        done += n;
        // A short transfer that leaves the rest unaligned: finish it buffered.
        if (done < buf.length && done % DIRECT_ALIGN !== 0) break;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL' || done > 0) throw error;
      this.dropDirect(direct);
      return false;
    }
    if (done < buf.length) {
      const rest = buf.subarray(done);
      await (op === 'write' ? this.writeBuffered(offset + done, rest) : this.readBuffered(offset + done, rest));
    }
    return true;
  }

  private dropDirect(direct: fs.FileHandle): void {
    if (this.direct !== direct) return;
    this.direct = undefined;
    // Writes already issued on it are durable via the buffered fd's fdatasync (same inode); close it after a flush.
    void direct
      .datasync()
      .catch(() => undefined)
      .finally(() => direct.close().catch(() => undefined));
  }

  private async writeBuffered(offset: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  private async readBuffered(offset: number, out: Buffer): Promise<void> {
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await this.file.read(out, done, out.length - done, offset + done);
      if (bytesRead === 0) throw new Error(`unexpected end of ${this.filePath} at ${offset + done} (size ${this.size})`);
      done += bytesRead;
    }
  }

  /**
   * The first byteOffset of `scratch` (which has DIRECT_ALIGN spare bytes) whose address the kernel accepts for
   * direct I/O on this filesystem, or undefined. The probe is a direct read of a data block of a scratch file in the
   * volume's directory: it has to be allocated data, since a direct read of a hole (or of tmpfs) is served without
   * any alignment check, which would make every address look fine.
   */
  private probeAlignedOffset(scratch: Buffer): number | undefined {
    const fd = this.openProbe();
    if (fd === undefined) return undefined;
    const accepts = (at: number): boolean => {
      try {
        fsSync.readSync(fd, scratch, at, DIRECT_ALIGN, 0);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
        throw error;
      }
    };
    // Same-sized allocations usually come back with the same misalignment: try the last answer first.
    if (accepts(this.lastProbeOffset)) return this.lastProbeOffset;
    for (let at = 0; at < DIRECT_ALIGN; at += PROBE_STEP) {
      if (accepts(at)) return (this.lastProbeOffset = at);
    }
    return undefined;
  }

  private openProbe(): number | undefined {
    if (this.probeFd !== undefined) return this.probeFd ?? undefined;
    this.probeFd = null;
    const probePath = path.join(path.dirname(this.filePath), `.${path.basename(this.filePath)}.dio-probe-${process.pid}-${Date.now()}`);
    try {
      const fill = fsSync.openSync(probePath, 'wx');
      try {
        fsSync.writeSync(fill, Buffer.alloc(DIRECT_ALIGN, 0xa5), 0, DIRECT_ALIGN, 0);
        fsSync.fdatasyncSync(fill); // allocated on disk, so the probe read really goes to the device
      } finally {
        fsSync.closeSync(fill);
      }
      this.probeFd = fsSync.openSync(probePath, fsSync.constants.O_RDONLY | fsSync.constants.O_DIRECT);
    } catch {
      this.probeFd = null;
    } finally {
      fsSync.rmSync(probePath, { force: true });
    }
    return this.probeFd ?? undefined;
  }

  private checkRange(op: string, offset: number, length: number): void {
    if (this.closed) throw new Error(`${op} on closed volume file ${this.filePath}`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${op} of ${length} bytes at ${offset} is outside volume file ${this.filePath} (size ${this.size})`);
    }
  }
}

async function blockDeviceSize(devicePath: string): Promise<number> {
  const { stdout } = await runTool('blockdev', ['--getsize64', devicePath]);
  return Number(stdout.trim());
}
