/**
 * Does sparseness cost anything? Our engine copies (a) a sparse disk, 4 GiB virtual with ~5 % allocated in
 * scattered extents, and (b) a dense file holding just those allocated bytes; both served by nbdkit's file plugin.
 * Alternating runs, medians. Ideal is 1.0: holes should cost (almost) nothing to skip and to verify.
 *
 *   npx tsx bench/sparse.ts      env: BENCH_SPARSE_GIB (4) BENCH_ALLOC_PCT (5) BENCH_RUNS (3) BENCH_DIR (os tmpdir)
 *                                     BENCH_CONNECTIONS (2) BENCH_CHUNK_MIB (2) BENCH_IN_FLIGHT (8)
 * Last line: sparse_vs_allocated=<time sparse / time allocated-only>
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import * as os from 'node:os';
import * as path from 'node:path';
import { startNbdkit } from '../nbd/nbdkit';
import { createSparseFile, envNumber, keystream, median, MiB } from './bench-files';
import { sha256File } from '../tools/disk-image';
import { engineTuningFromEnv, runEngineCopy, type EngineRun } from './run-engine-copy';

const run = promisify(execFile);
const GRAIN = 64 * 1024; // extents start and end on 64 KiB, like VMFS/VMDK grains

/** Non-overlapping random extents (64 KiB – 2 MiB) until `target` bytes are allocated. */
function scatteredExtents(size: number, target: number): Array<[number, number]> {
  const grains = size / GRAIN;
  const used = new Uint8Array(grains);
  const out: Array<[number, number]> = [];
  let allocated = 0;
  while (allocated < target) {
    const len = Math.min(1 + Math.floor(Math.random() * 32), (target - allocated) / GRAIN) | 0 || 1;
    const start = Math.floor(Math.random() * (grains - len));
    let free = true;
    for (let g = start - 1; g <= start + len && free; g++) if (g >= 0 && g < grains && used[g]) free = false; // keep a gap
    if (!free) continue;
    used.fill(1, start, start + len);
    out.push([start * GRAIN, len * GRAIN]);
    allocated += len * GRAIN;
  }
  return out.sort((a, b) => a[0] - b[0]);
}

async function main(): Promise<void> {
  const size = envNumber('BENCH_SPARSE_GIB', 4) * 1024 * MiB;
  const pct = envNumber('BENCH_ALLOC_PCT', 5);
  const runs = envNumber('BENCH_RUNS', 3);
  const tuning = engineTuningFromEnv();
  const dir = await mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'vmigrate-bench-sparse-'));
  const servers: Array<Awaited<ReturnType<typeof startNbdkit>>> = [];
  try {
    const sparsePath = path.join(dir, 'sparse.img');
    const densePath = path.join(dir, 'dense.img');
    const extents = scatteredExtents(size, Math.round((size * pct) / 100 / GRAIN) * GRAIN);
    const allocated = extents.reduce((n, [, len]) => n + len, 0);
    await createSparseFile(sparsePath, size);
    const next = keystream();
    const sparse = await open(sparsePath, 'r+');
    const dense = await open(densePath, 'w');
    let denseAt = 0;
    for (const [offset, length] of extents) {
      const data = next(length);
      await sparse.write(data, 0, length, offset);
      await dense.write(data, 0, length, denseAt);
      denseAt += length;
    }
    await sparse.close();
    await dense.close();
    console.log(`sparse: ${size / MiB} MiB virtual, ${extents.length} extents, ${(allocated / MiB).toFixed(0)} MiB allocated; dense: same bytes`);

    const [sparseServer, denseServer] = [
      await startNbdkit({ plugin: 'file', params: { file: sparsePath }, readOnly: true, socketDir: dir }),
      await startNbdkit({ plugin: 'file', params: { file: densePath }, readOnly: true, socketDir: dir }),
    ];
    servers.push(sparseServer, denseServer);
    const outSparse = path.join(dir, 'out-sparse.img');
    const outDense = path.join(dir, 'out-dense.img');
    const sparseRuns: EngineRun[] = [];
    const denseRuns: EngineRun[] = [];
    // Reference only: what the same I/O pattern costs nbdcopy (scattered extents are not free for anyone).
    const nbdcopyMs = { sparse: [] as number[], dense: [] as number[] };
    const timeNbdcopy = async (uri: string, out: string) => {
      await rm(out, { force: true });
      const t0 = performance.now();
      await run('nbdcopy', ['--flush', uri, out]);
      return performance.now() - t0;
    };
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? ['sparse', 'dense'] : ['dense', 'sparse'];
      for (const which of order) {
        if (which === 'sparse') {
          sparseRuns.push(await runEngineCopy(sparseServer.socketPath, outSparse, path.join(dir, 'dig-s'), tuning));
          nbdcopyMs.sparse.push(await timeNbdcopy(sparseServer.uri, path.join(dir, 'nbdcopy-s.img')));
        } else {
          denseRuns.push(await runEngineCopy(denseServer.socketPath, outDense, path.join(dir, 'dig-d'), tuning));
          nbdcopyMs.dense.push(await timeNbdcopy(denseServer.uri, path.join(dir, 'nbdcopy-d.img')));
        }
      }
      const [s, d] = [sparseRuns[i], denseRuns[i]];
      console.log(
        `run ${i + 1}: sparse ${s.totalMs.toFixed(0)} ms (copy ${s.copyMs.toFixed(0)} + verify ${s.verifyMs.toFixed(0)}, read ${(s.result.bytesRead / MiB).toFixed(0)} MiB) | ` +
          `allocated-only ${d.totalMs.toFixed(0)} ms (copy ${d.copyMs.toFixed(0)} + verify ${d.verifyMs.toFixed(0)})`,
      );
    }
    if (sparseRuns.some((r) => r.result.bytesRead !== allocated)) throw new Error('the sparse copy read more than the allocated bytes');
    const [shaIn, shaOut] = [await sha256File(sparsePath), await sha256File(outSparse)];
    if (shaIn !== shaOut) throw new Error(`sparse output differs from its source (${shaIn} vs ${shaOut})`);
    console.log(`sha256 ok; sparse runs read exactly the ${(allocated / MiB).toFixed(0)} allocated MiB`);

    const s = median(sparseRuns.map((r) => r.totalMs));
    const d = median(denseRuns.map((r) => r.totalMs));
    console.log(`median: sparse ${s.toFixed(0)} ms, allocated-only ${d.toFixed(0)} ms`);
    const [ns, nd] = [median(nbdcopyMs.sparse), median(nbdcopyMs.dense)];
    console.log(`reference, nbdcopy --flush on the same pair: sparse ${ns.toFixed(0)} ms, allocated-only ${nd.toFixed(0)} ms, ratio ${(ns / nd).toFixed(3)}`);
    console.log(`sparse_vs_allocated=${(s / d).toFixed(3)}`);
  } finally {
    for (const server of servers) await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
