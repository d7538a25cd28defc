/**
 * Where a sparse file holds data, from the filesystem's extent map (FIEMAP via e2fsprogs' filefrag, because Node
 * has no lseek(SEEK_DATA)). Used to skip reading holes when verifying: a hole reads as zeros by the filesystem's
 * own guarantee. Anything unexpected (filefrag missing, FIEMAP unsupported e.g. on tmpfs, odd output) yields
 * undefined and the caller reads everything: the fallback is slower, never wrong. FUSE file systems (a share mounted
 * through bindfs or sshfs) do not pass FIEMAP through: filefrag then says "0 extents found" for a file full of
 * data, so a map from a FUSE file system is never trusted.
 */
import { execFile } from 'node:child_process';
import type { Extent } from '../../copy/block-device';

const EXTENT_LINE = /^\s*(\d+):\s*(\d+)\.\.\s*(\d+):/;
const SUMMARY_LINE = /: (\d+) extents? found\s*$/;
/** filefrag's first line names the file system's magic; FUSE's is 0x65735546. */
const FUSE_MAGIC_LINE = /^Filesystem type is: 65735546\b/m;

/** Extents covering [0, size): data where the filesystem has blocks (incl. delalloc/unwritten), holes elsewhere. */
export async function fileAllocationMap(filePath: string, size: number): Promise<Extent[] | undefined> {
  const output = await runFilefrag(filePath);
  return output === undefined ? undefined : parseFilefragOutput(output, size);
}

/** `filefrag -e -b1` output → extents covering [0, size); undefined if the output is not understood. */
export function parseFilefragOutput(output: string, size: number): Extent[] | undefined {
  if (FUSE_MAGIC_LINE.test(output)) return undefined;
  const lines = output.trimEnd().split('\n');
  const summary = SUMMARY_LINE.exec(lines[lines.length - 1] ?? '');
  if (!summary) return undefined;
  const data: Array<{ start: number; end: number }> = [];
  for (const line of lines) {
    const m = EXTENT_LINE.exec(line);
    if (!m) continue;
    // Rows are numbered 0, 1, 2…; a gap means output we do not understand. (The summary's count cannot be used:
    // it counts physically discontiguous fragments, not rows.)
    if (Number(m[1]) !== data.length) return undefined;
    // -b1: offsets are in bytes, the end is inclusive.
    data.push({ start: Number(m[2]), end: Number(m[3]) + 1 });
  }
  if (data.length === 0 && Number(summary[1]) !== 0) return undefined;
  data.sort((a, b) => a.start - b.start);

  const extents: Extent[] = [];
  let at = 0;
  const push = (end: number, zero: boolean) => {
    if (end <= at) return;
    const last = extents[extents.length - 1];
    if (last && last.zero === zero) last.length += end - at;
    else extents.push({ offset: at, length: end - at, zero });
    at = end;
  };
  for (const { start, end } of data) {
    if (start >= size) break;
    push(Math.min(start, size), true);
    push(Math.min(end, size), false);
  }
  push(size, true);
  return extents;
}

function runFilefrag(filePath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    // -s: sync first so the map is settled; -e: extent list; -b1: byte units.
    execFile('filefrag', ['-s', '-e', '-b1', filePath], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout) => {
      resolve(err ? undefined : stdout);
    });
  });
}
