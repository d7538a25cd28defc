/** What the copy engine takes and returns. Defaults live here so callers and benchmarks agree on them. */
import type { ByteArea } from './byte-areas';
import type { BlockSource } from './block-device';
import type { ReadRetryPolicy } from './source-reader';

export const DEFAULT_CHUNK_SIZE = 2 * 1024 * 1024;
export const DEFAULT_IN_FLIGHT = 16;
/** Read-back lanes of the verification, which runs alongside the copy. */
export const DEFAULT_VERIFY_IN_FLIGHT = 4;
export const DEFAULT_FLUSH_BYTES = 64 * 1024 * 1024;
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 2000;
export const DEFAULT_PROGRESS_INTERVAL_MS = 100;
/** Segments of the chunk digest: a zero segment costs nothing to hash, so partly-sparse chunks stay cheap. */
export const DIGEST_LEAF_SIZE = 64 * 1024;

/** A durable point: everything below bytesDone (a disk offset) is on stable storage in the target and verified. */
export interface CopyCheckpoint {
  bytesDone: number;
  /** The disk's size. */
  bytesTotal: number;
  /** Sum of the areas' lengths (what a complete copy covers). */
  areaBytes: number;
  /** This attempt only. */
  bytesRead: number;
  /** This attempt only. */
  bytesWritten: number;
}

export interface CopyProgress extends CopyCheckpoint {
  /** Contiguous completion, written but perhaps not yet flushed and verified (bytesDone is the proven one). */
  bytesCopied: number;
  bytesZeroSkipped: number;
  /** Target bytes read back by the verification so far. */
  bytesReadBack: number;
  /** Failed source requests that were tried again. */
  readRetries: number;
}

export interface CopyOptions {
  /** What to copy (default: the whole disk). Sorted and merged by the engine. */
  areas?: readonly ByteArea[];
  /**
   * The target reads as zeros wherever this copy has not written (a new volume): source holes and zero data are
   * then skipped, not written. false (a volume that holds an earlier sync): zeros inside the areas are written.
   * The verification checks the result either way. Default true.
   */
  freshTarget?: boolean;
  /** Also make the target zero where it holds data outside the areas (a full resync onto a used volume). */
  zeroOutside?: boolean;
  /** Digest grid; must stay the same across attempts of one copy. Multiple of DIGEST_LEAF_SIZE. */
  chunkSize?: number;
  /** Chunks being copied at once (each has its reads, then its writes, outstanding), over all connections. */
  inFlight?: number;
  /** Chunks being read back at once by the verification. */
  verifyInFlight?: number;
  /** Worker threads computing digests (0 = on the calling thread). Default: available cores, between 1 and 2. */
  hashThreads?: number;
  /** Watermark from a previous attempt's checkpoint; nothing below it is read from the source again. */
  resumeFrom?: number;
  /** Per-chunk source digests (32 bytes each); keep it across attempts so a resume can report the whole copy. */
  digestLogPath: string;
  /** Flush (and hand chunks to the verification) after this much progress, or flushIntervalMs. */
  flushBytes?: number;
  flushIntervalMs?: number;
  checkpointIntervalMs?: number;
  /** Also checkpoint after this many bytes of verified advance. */
  checkpointBytes?: number;
  /** Awaited; a rejection fails the copy. Called with a verified watermark, and once more before a failure is thrown. */
  onCheckpoint?: (checkpoint: CopyCheckpoint) => void | Promise<void>;
  /** Cheap and frequent (throttled to progressIntervalMs); never awaited. */
  onProgress?: (progress: CopyProgress) => void;
  progressIntervalMs?: number;
  /** Called once, when the first source byte of this attempt has arrived (cutover-overhead measurements). */
  onFirstByte?: () => void;
  /** How often one source request is tried before the copy gives up on it. */
  readRetry?: Partial<ReadRetryPolicy>;
  /** Replaces a source connection that broke (reconnect, or restart the server and reconnect). */
  reopenSource?: (index: number) => Promise<BlockSource>;
  signal?: AbortSignal;
}

export interface VerificationResult {
  algorithm: 'blake3-tree';
  chunkSize: number;
  /** Chunk digest = BLAKE3 over the BLAKE3 of each leaf-bounded segment of the covered bytes (see chunk-digest.ts). */
  leafSize: number;
  /** Chunks the areas touch. */
  chunks: number;
  /** BLAKE3 over the concatenated chunk digests of the source (hex). */
  source: string;
  /** Same over what was read back from the target (chunks proven by an earlier attempt count with their digest). */
  target: string;
  match: boolean;
  /** Chunks this attempt read back; the others were proven by an earlier attempt of the same copy. */
  chunksReadBack: number;
}

export interface CopyResult {
  bytesTotal: number;
  areaBytes: number;
  areas: number;
  /** Source bytes read by this attempt. */
  bytesRead: number;
  /** Target bytes written by this attempt (copied plus zeroed). */
  bytesWritten: number;
  /** Of bytesWritten, zeros written to clear what the target held. */
  bytesZeroed: number;
  /** Covered bytes above the resume point that were not written (holes, zeros onto a fresh target). */
  bytesZeroSkipped: number;
  /** Target bytes read back by this attempt's verification. */
  bytesReadBack: number;
  /** Source requests tried again, and connections replaced, by this attempt. */
  readRetries: number;
  reconnects: number;
  /** Where this attempt actually started (resumeFrom rounded down to the chunk grid, or lower if the digest log fell short). */
  resumedFrom: number;
  durationMs: number;
  /** When the first source byte arrived (epoch ms), if any was read. */
  firstByteAt?: number;
  verification: VerificationResult;
}
