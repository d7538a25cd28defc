/**
 * Our engine vs nbdcopy, same source (nbdkit file plugin, read-only, Unix socket), same filesystem, alternating
 * runs, medians. Both end durable: nbdcopy --flush (buffered writes, flushed at the end), ours writes O_DIRECT and
 * fdatasyncs before each checkpoint. Ours also digests every chunk (BLAKE3) and reads each one back from the target
 * once it is flushed, comparing digests, while the copy goes on (the verification every migration gets): the
 * headline ratio includes it. Bench defaults (2 connections, 8 in flight) were the best on a 2-vCPU box with a local
 * socket; the engine's own defaults (16 in flight) are meant for remote, higher-latency sources.
 *
 *   npx tsx bench/copy.ts        env: BENCH_SIZE_MIB (1024) BENCH_RUNS (3) BENCH_DIR (os tmpdir)
 *                                     BENCH_CONNECTIONS (2) BENCH_CHUNK_MIB (2) BENCH_IN_FLIGHT (8)
 *                                     BENCH_HASH_THREADS, BENCH_FLUSH_MIB, BENCH_VERIFY_IN_FLIGHT, BENCH_DIRECT (0: buffered)
 *
 * A third line per run measures the storage's floor for any verified copy: writing the disk with O_DIRECT while
 * reading a disk's worth back with O_DIRECT (4 dd processes each way, concurrently). A copy that proves what it
 * wrote by reading it back from the device moves twice the bytes nbdcopy moves; where the device is the limit,
 * `floor_vs_nbdcopy` is the best `copy_vs_nbdcopy` any such copy can reach on this machine.
 *
 * Last line: copy_vs_nbdcopy=<our throughput / nbdcopy's>
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startNbdkit } from '../nbd/nbdkit';
import { envNumber, median, MiB, writeRandomFile } from './bench-files';
import { sha256File } from '../tools/disk-image';
import { engineTuningFromEnv, runEngineCopy, type EngineRun } from './run-engine-copy';

const run = promisify(execFile);

async function main(): Promise<void> {
  const size = envNumber('BENCH_SIZE_MIB', 1024) * MiB;
  const runs = envNumber('BENCH_RUNS', 3);
  const tuning = engineTuningFromEnv();
  const dir = await mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'vmigrate-bench-copy-'));
  let nbdkit: Awaited<ReturnType<typeof startNbdkit>> | undefined;
  try {
    const source = path.join(dir, 'source.img');
    const outNbdcopy = path.join(dir, 'a-nbdcopy.img');
    const outOurs = path.join(dir, 'b-engine.img');
    console.log(`source: ${size / MiB} MiB of random data in ${dir}`);
    await writeRandomFile(source, size);
    const sourceSha = await sha256File(source);
    nbdkit = await startNbdkit({ plugin: 'file', params: { file: source }, readOnly: true, socketDir: dir });

    const nbdcopyMs: number[] = [];
    const floorMs: number[] = [];
    const ours: EngineRun[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate who goes first so page-cache and writeback effects don't favour one side.
      const order = i % 2 === 0 ? ['nbdcopy', 'engine'] : ['engine', 'nbdcopy'];
      for (const who of order) {
        if (who === 'nbdcopy') {
          await rm(outNbdcopy, { force: true });
          const t0 = performance.now();
          await run('nbdcopy', ['--flush', nbdkit.uri, outNbdcopy]);
          nbdcopyMs.push(performance.now() - t0);
        } else {
          ours.push(await runEngineCopy(nbdkit.socketPath, outOurs, path.join(dir, 'digests'), tuning));
        }
      }
      floorMs.push(await deviceFloorMs(source, outNbdcopy, path.join(dir, 'c-floor.img'), size));
      const last = ours[ours.length - 1];
      console.log(
        `run ${i + 1}: nbdcopy ${mibps(size, nbdcopyMs[i])} MiB/s | engine ${mibps(size, last.totalMs)} MiB/s ` +
          `(copy ${last.copyMs.toFixed(0)} ms, verification done ${last.verifyMs.toFixed(0)} ms later, ${last.connections} conn) | ` +
          `device floor ${mibps(size, floorMs[i])} MiB/s`,
      );
    }
    const [shaA, shaB] = [await sha256File(outNbdcopy), await sha256File(outOurs)];
    if (shaA !== sourceSha || shaB !== sourceSha) throw new Error(`output mismatch: source ${sourceSha}, nbdcopy ${shaA}, engine ${shaB}`);
    console.log(`sha256 ok (both outputs = source ${sourceSha.slice(0, 16)}…)`);

    const nbdcopyMed = median(nbdcopyMs);
    const oursMed = median(ours.map((r) => r.totalMs));
    const copyOnlyMed = median(ours.map((r) => r.copyMs));
    console.log(`nbdcopy --flush:          ${mibps(size, nbdcopyMed)} MiB/s (median of ${runs})`);
    console.log(`engine copy+verify:       ${mibps(size, oursMed)} MiB/s (chunk ${tuning.chunkSize / MiB} MiB, ${tuning.inFlight} in flight)`);
    console.log(`engine until the last chunk was written: ${mibps(size, copyOnlyMed)} MiB/s (verification runs alongside)`);
    console.log(`device floor (direct write + direct read-back, concurrently): ${mibps(size, median(floorMs))} MiB/s`);
    console.log(`floor_vs_nbdcopy=${(nbdcopyMed / median(floorMs)).toFixed(3)} (the best a copy verified by re-reading the device can reach here)`);
    console.log(`written_vs_nbdcopy=${(nbdcopyMed / copyOnlyMed).toFixed(3)} (until written, not durable nor verified: not the headline)`);
    console.log(`copy_vs_nbdcopy=${(nbdcopyMed / oursMed).toFixed(3)}`);
  } finally {
    await nbdkit?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** 4 dd writing `source` to `out` with O_DIRECT while 4 dd read `readBack` with O_DIRECT; fsync included. */
async function deviceFloorMs(source: string, readBack: string, out: string, size: number): Promise<number> {
  await rm(out, { force: true });
  const quarter = size / 4 / (2 * MiB);
  const t0 = performance.now();
  await Promise.all([
    ...[0, 1, 2, 3].map((i) =>
      run('dd', [`if=${source}`, `of=${out}`, 'bs=2M', 'oflag=direct', 'conv=notrunc,fdatasync', `seek=${i * quarter}`, `skip=${i * quarter}`, `count=${quarter}`, 'status=none']),
    ),
    ...[0, 1, 2, 3].map((i) => run('dd', [`if=${readBack}`, 'of=/dev/null', 'bs=2M', 'iflag=direct', `skip=${i * quarter}`, `count=${quarter}`, 'status=none'])),
  ]);
  return performance.now() - t0;
}

function mibps(bytes: number, ms: number): string {
  return (bytes / MiB / (ms / 1000)).toFixed(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
