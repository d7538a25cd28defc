/**
 * Reusable chunk-sized buffers. A fresh 2 MiB Buffer per read costs an mmap, page faults on first touch and GC
 * churn (measured ~0.3 s of CPU per GiB on a 2-vCPU VM); a lane instead borrows one slot for the whole life of a
 * chunk (read → digest → write) and gives it back. Slots are SharedArrayBuffer-backed so the hash worker threads
 * can read them in place (no transfer, no copy) while the lane waits for the digest. A target may supply the slots'
 * memory (BlockTarget.allocateIoBuffer: e.g. aligned for O_DIRECT), which must be SharedArrayBuffer-backed too.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly slotSize: number,
    private readonly allocate: (size: number) => Buffer = (size) => Buffer.from(new SharedArrayBuffer(size)),
  ) {}

  acquire(): Buffer {
    return this.free.pop() ?? this.newSlot();
  }

  /** Only for a slot nothing (a read, a hash, a write) still touches; a failed lane simply drops its slot. */
  release(slot: Buffer): void {
    this.free.push(slot);
  }

  private newSlot(): Buffer {
    const slot = this.allocate(this.slotSize);
    if (slot.length !== this.slotSize || !(slot.buffer instanceof SharedArrayBuffer)) {
      throw new Error(`buffer pool: allocator returned ${slot.length} bytes (want ${this.slotSize}, SharedArrayBuffer-backed)`);
    }
    return slot;
  }
}
