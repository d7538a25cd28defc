/** What copyDisk takes and returns. Defaults live here so callers and benchmarks agree on them. */

export const DEFAULT_CHUNK_SIZE = 2 * 1024 * 1024;
export const DEFAULT_IN_FLIGHT = 16;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 2000;
export const DEFAULT_PROGRESS_INTERVAL_MS = 100;
/** Leaves of the per-chunk digest tree: a zero leaf costs nothing to hash, so partly-sparse chunks stay cheap. */
export const DIGEST_LEAF_SIZE = 64 * 1024;

/** A durable point: everything below bytesDone is on stable storage in the target and in the digest log. */
export interface CopyCheckpoint {
  bytesDone: number;
  bytesTotal: number;
  /** This attempt only. */
  bytesRead: number;
  /** This attempt only. */
  bytesWritten: number;
}

export interface CopyProgress extends CopyCheckpoint {
  phase: 'copy' | 'verify';
  /** Contiguous completion, written but perhaps not yet flushed (bytesDone is the durable one). */
  bytesCopied: number;
  bytesZeroSkipped: number;
  /** Verify phase: how far the target re-read has got. */
  bytesVerified: number;
}

export interface CopyOptions {
  /** Read size and the digest grid; must stay the same across attempts of one disk. Multiple of DIGEST_LEAF_SIZE. */
  chunkSize?: number;
  /** Concurrent chunk workers (each has one read or write outstanding), spread round-robin over the sources. */
  inFlight?: number;
  /** Worker threads computing sha256 (0 = on the calling thread). Default: available cores, between 1 and 4. */
  hashThreads?: number;
  /** Watermark from a previous attempt's checkpoint; nothing below it is read from the source again. */
  resumeFrom?: number;
  /** Per-chunk sha256 records (32 bytes at index*32); keep it across attempts so a resume can reuse digests. */
  digestLogPath: string;
  checkpointIntervalMs?: number;
  /** Also checkpoint after this many bytes of watermark advance. */
  checkpointBytes?: number;
  /** Awaited; a rejection fails the copy. Called after target flush + digest log fsync. */
  onCheckpoint?: (checkpoint: CopyCheckpoint) => void | Promise<void>;
  /** Cheap and frequent (throttled to progressIntervalMs); never awaited. */
  onProgress?: (progress: CopyProgress) => void;
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

export interface VerificationResult {
  algorithm: 'sha256-chunked';
  chunkSize: number;
  /** Chunk digest = sha256 over the sha256 of each leafSize leaf of the chunk (the last leaf/chunk may be short). */
  leafSize: number;
  /** sha256 over the concatenated chunk digests of the source (hex). */
  source: string;
  /** Same over what was read back from the target. */
  target: string;
  match: boolean;
}

export interface CopyResult {
  bytesTotal: number;
  /** Source bytes read by this attempt. */
  bytesRead: number;
  /** Target bytes written by this attempt. */
  bytesWritten: number;
  /** Bytes above the resume point that were neither written nor (for zero extents) read. */
  bytesZeroSkipped: number;
  /** Where this attempt actually started (resumeFrom rounded down to the chunk grid, or lower if the digest log fell short). */
  resumedFrom: number;
  durationMs: number;
  verification: VerificationResult;
}
