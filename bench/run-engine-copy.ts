/**
 * One timed run of OUR engine from an NBD socket to a fresh sparse file: connect, copy and verify (durable: fdatasync
 * before every checkpoint), close. The time covers all of it, as a migration would pay it.
 */
import { rm } from 'node:fs/promises';
import { copyDisk } from '../copy/copy-disk';
import type { CopyResult } from '../copy/copy-options';
import { NbdClient } from '../nbd/nbd-client';
import { FileBlockTarget } from '../targets/local/file-block-target';
import { createSparseFile, envNumber, MiB } from './bench-files';

export interface EngineTuning {
  connections: number;
  chunkSize: number;
  inFlight: number;
  /** Worker threads for sha256; undefined = the engine's default. */
  hashThreads?: number;
}

/** Engine settings for both benches: BENCH_CONNECTIONS, BENCH_CHUNK_MIB, BENCH_IN_FLIGHT. */
export function engineTuningFromEnv(): EngineTuning {
  return {
    connections: envNumber('BENCH_CONNECTIONS', 2),
    chunkSize: envNumber('BENCH_CHUNK_MIB', 2) * MiB,
    inFlight: envNumber('BENCH_IN_FLIGHT', 8),
    hashThreads: process.env.BENCH_HASH_THREADS === undefined ? undefined : Number(process.env.BENCH_HASH_THREADS),
  };
}

export interface EngineRun {
  totalMs: number;
  /** Until the last chunk was written (the verification runs alongside the copy)… */
  copyMs: number;
  /** …and from then until the copy was flushed and verified to the end. */
  verifyMs: number;
  connections: number;
  result: CopyResult;
}

export async function runEngineCopy(socketPath: string, outPath: string, digestLogPath: string, tuning: EngineTuning): Promise<EngineRun> {
  await rm(outPath, { force: true });
  await rm(digestLogPath, { force: true });
  await rm(`${digestLogPath}.json`, { force: true });
  const started = performance.now();
  const first = await NbdClient.connect({ socketPath });
  // Extra connections only when the server promises they see the same data (NBD_FLAG_CAN_MULTI_CONN).
  const extra = first.canMultiConn ? tuning.connections - 1 : 0;
  const sources = [first, ...(await Promise.all(Array.from({ length: extra }, () => NbdClient.connect({ socketPath }))))];
  await createSparseFile(outPath, first.size);
  const target = await FileBlockTarget.open(outPath, first.size, { directIo: process.env.BENCH_DIRECT !== "0" });
  let copiedAt = 0;
  try {
    const result = await copyDisk(sources, target, {
      flushBytes: process.env.BENCH_FLUSH_MIB ? Number(process.env.BENCH_FLUSH_MIB) * MiB : undefined,
      verifyInFlight: process.env.BENCH_VERIFY_IN_FLIGHT ? Number(process.env.BENCH_VERIFY_IN_FLIGHT) : undefined,
      digestLogPath,
      chunkSize: tuning.chunkSize,
      inFlight: tuning.inFlight,
      hashThreads: tuning.hashThreads,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (!copiedAt && p.bytesCopied === p.bytesTotal) copiedAt = performance.now();
      },
    });
    const ended = performance.now();
    return { totalMs: ended - started, copyMs: copiedAt - started, verifyMs: ended - copiedAt, connections: sources.length, result };
  } finally {
    await target.close();
    await Promise.all(sources.map((s) => s.close()));
  }
}
