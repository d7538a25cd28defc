/** BlockTarget wrappers that observe or sabotage the engine's writes. */
import type { BlockTarget } from '../../../copy/block-device';

/** Records completed writes and which of them a finished flush covered. */
export class RecordingTarget implements BlockTarget {
  readonly completed: Array<{ offset: number; length: number }> = [];
  /** completed[0 .. durableCount) were finished before some flush that has returned. */
  durableCount = 0;
  flushes = 0;

  constructor(private readonly inner: BlockTarget) {}

  get size(): number {
    return this.inner.size;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    await this.inner.write(offset, data);
    this.completed.push({ offset, length: data.length });
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }

  async flush(): Promise<void> {
    const covered = this.completed.length;
    await this.inner.flush();
    this.flushes++;
    this.durableCount = Math.max(this.durableCount, covered);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Passes everything through to `inner`; the saboteurs below change what a write does. */
abstract class WrappedTarget implements BlockTarget {
  constructor(protected readonly inner: BlockTarget) {}

  get size(): number {
    return this.inner.size;
  }

  abstract write(offset: number, data: Buffer): Promise<void>;

  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Flips one byte of whatever write covers `offset` (a silently corrupting storage path). */
export class CorruptingTarget extends WrappedTarget {
  constructor(
    inner: BlockTarget,
    private readonly offset: number,
  ) {
    super(inner);
  }

  write(offset: number, data: Buffer): Promise<void> {
    if (this.offset >= offset && this.offset < offset + data.length) {
      data = Buffer.from(data);
      data[this.offset - offset] ^= 0xff;
    }
    return this.inner.write(offset, data);
  }
}

/** Acknowledges the write covering `offset` without storing it (a lost write). */
export class DroppingTarget extends WrappedTarget {
  dropped = 0;

  constructor(
    inner: BlockTarget,
    private readonly offset: number,
  ) {
    super(inner);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.offset >= offset && this.offset < offset + data.length) {
      this.dropped++;
      return;
    }
    return this.inner.write(offset, data);
  }
}

/** Stores the write covering `offset` `shift` bytes away (a wrong offset in the storage path). */
export class ShiftingTarget extends WrappedTarget {
  constructor(
    inner: BlockTarget,
    private readonly offset: number,
    private readonly shift: number,
  ) {
    super(inner);
  }

  write(offset: number, data: Buffer): Promise<void> {
    const hit = this.offset >= offset && this.offset < offset + data.length;
    return this.inner.write(hit ? offset + this.shift : offset, data);
  }
}
