/** Builds disk images with the real tools (sfdisk, mkfs.*, mkswap) and reads them back through blkid/sfdisk. */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ReadAt } from '../../../guest/disk-layout';

export const MiB = 1024 * 1024;

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export class ImageWorkspace {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-guest-'));
  private n = 0;

  /** A sparse file of `size` bytes. */
  blank(size: number, name = `disk${this.n++}.img`): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, '');
    truncateSync(file, size);
    return file;
  }

  partition(image: string, script: string): void {
    execFileSync('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', image], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  }

  /** mkfs on a separate file of `size`, then copy it into the image at `offset` (no loop devices needed). */
  placeFilesystem(image: string, offset: number, size: number, mkfs: (file: string) => void): void {
    const fs = this.blank(size);
    mkfs(fs);
    execFileSync('dd', [`if=${fs}`, `of=${image}`, 'bs=1M', `seek=${offset}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
    rmSync(fs);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function fileReader(image: string): { read: ReadAt; reads: Array<[number, number]>; close: () => void } {
  const fd = openSync(image, 'r');
  const reads: Array<[number, number]> = [];
  return {
    reads,
    read: async (offset, length) => {
      reads.push([offset, length]);
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buf, done, length - done, offset + done);
        if (n === 0) throw new Error(`read past end of ${image} at ${offset + done}`);
        done += n;
      }
      return buf;
    },
    close: () => closeSync(fd),
  };
}

/** `blkid -p` at a byte offset: TYPE, LABEL, UUID, … (empty when nothing is recognised). */
export function blkidAt(image: string, offset: number): Record<string, string> {
  const r = spawnSync('blkid', ['-p', '-o', 'export', '-O', String(offset), image], { encoding: 'utf8' });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
  bootable?: boolean;
}

export function sfdiskJson(image: string): { label: string; id: string; sectorsize: number; partitions: SfdiskPartition[] } {
  return JSON.parse(execFileSync('sfdisk', ['-J', image], { encoding: 'utf8' })).partitiontable;
}
