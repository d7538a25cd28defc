/**
 * The contracts between the copy engine and whatever it reads from or writes to.
 * The NBD client implements BlockSource; target drivers hand out BlockTargets.
 */

/** A run of bytes and whether it reads as zeros (an unallocated hole or a known-zero area). */
export interface Extent {
  offset: number;
  length: number;
  /** true when the range reads as all zeros (NBD_STATE_ZERO, or a hole); such ranges need not be read. */
  zero: boolean;
}

export interface BlockSource {
  /** Size of the export in bytes. */
  readonly size: number;
  /** Read exactly `length` bytes at `offset` into a new buffer the caller then owns. Rejects if `signal` aborts. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Optional: read exactly `dest.length` bytes at `offset` into `dest` (a reusable buffer of the caller's). Once the
   * promise settles (even rejected by `signal`), the source no longer writes into `dest`.
   */
  readInto?(offset: number, dest: Buffer, signal?: AbortSignal): Promise<void>;
  /**
   * Allocation map of [offset, offset+length). May describe fewer bytes than asked (the caller loops from the end of
   * the last extent), never more. A source that cannot tell returns one extent with zero=false (all data).
   */
  extents(offset: number, length: number): Promise<Extent[]>;
  /** Optional: true once the connection is unusable (every request would fail); the copy then asks for a new one. */
  readonly broken?: boolean;
  close(): Promise<void>;
}

export interface BlockTarget {
  readonly size: number;
  /** Write `data` at `offset`. */
  write(offset: number, data: Buffer): Promise<void>;
  /** Read back (used for verification). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Optional: read back exactly `dest.length` bytes at `offset` into `dest`. */
  readInto?(offset: number, dest: Buffer): Promise<void>;
  /**
   * Optional: a SharedArrayBuffer-backed buffer of `size` bytes the target does its fastest I/O with (e.g. memory
   * aligned for O_DIRECT); the engine's chunk slots come from here. Any Buffer still works with write/readInto.
   */
  allocateIoBuffer?(size: number): Buffer;
  /** Make every completed write durable (fdatasync or the backend's equivalent). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
