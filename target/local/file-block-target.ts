/** A volume's raw file as a BlockTarget: positional I/O, fdatasync flushes, holes reported for verification. */
import { promises as fs } from 'node:fs';
import type { Extent } from '../../copy/block-device';
import type { AllocationAwareTarget } from '../../copy/allocation-aware-target';
import { fileAllocationMap } from './file-allocation-map';

export class FileBlockTarget implements AllocationAwareTarget {
  private closed = false;

  private constructor(
    readonly filePath: string,
    readonly size: number,
    private readonly file: fs.FileHandle,
  ) {}

  /** Opens an existing file read-write; its length must be `expectedSize` (a volume never changes size). */
  static async open(filePath: string, expectedSize: number): Promise<FileBlockTarget> {
    const file = await fs.open(filePath, 'r+');
    const { size } = await file.stat();
    if (size !== expectedSize) {
      await file.close();
      throw new Error(`volume file ${filePath} is ${size} bytes, expected ${expectedSize}`);
    }
    return new FileBlockTarget(filePath, size, file);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.checkRange('write', offset, data.length);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, out: Buffer): Promise<void> {
    const length = out.length;
    this.checkRange('read', offset, length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.file.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error(`unexpected end of ${this.filePath} at ${offset + done} (size ${this.size})`);
      done += bytesRead;
    }
  }

  flush(): Promise<void> {
    return this.file.datasync();
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
    await this.file.close();
  }

  private checkRange(op: string, offset: number, length: number): void {
    if (this.closed) throw new Error(`${op} on closed volume file ${this.filePath}`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${op} of ${length} bytes at ${offset} is outside volume file ${this.filePath} (size ${this.size})`);
    }
  }
}
