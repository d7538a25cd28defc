import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, truncate } from 'node:fs/promises';

/**
 * A disk image with real content: an MBR with two partitions, an ext4 file system in the first, random data spread
 * over the second and zeros (holes) between. Every region is different, so a chunk written at the wrong offset
 * changes the checksum.
 */
export async function makeDiskImage(file: string, sizeBytes: number, opts: { dataRegions?: number; regionBytes?: number } = {}): Promise<void> {
  const MiB = 1024 * 1024;
  await truncate(file, 0).catch(() => undefined);
  const fh = await open(file, 'w');
  await fh.truncate(sizeBytes);
  await fh.close();
  const p1Sectors = Math.floor(sizeBytes / 4 / 512);
  execFileSync('sfdisk', ['--quiet', file], { input: `label: dos\nstart=2048, size=${p1Sectors}, type=83\nstart=${2048 + p1Sectors}, type=83\n` });
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'vmroot', '-E', `offset=${MiB}`, file, `${Math.floor((p1Sectors * 512) / 1024)}k`]);
  const regions = opts.dataRegions ?? 24;
  const regionBytes = opts.regionBytes ?? 4 * MiB;
  const p2Start = MiB + p1Sectors * 512;
  const span = sizeBytes - p2Start - regionBytes;
  const out = await open(file, 'r+');
  try {
    const buf = Buffer.alloc(regionBytes);
    for (let i = 0; i < regions; i++) {
      // Spread regions over the second partition; odd byte offsets so nothing is aligned by accident.
      const offset = p2Start + Math.floor((span * i) / regions) + (i % 7) * 4096 + 511;
      randomFillSync(buf);
      await out.write(buf, 0, regionBytes, offset);
    }
    await out.write(Buffer.from('vmigrate-last-bytes'), 0, 19, sizeBytes - 19);
  } finally {
    await out.close();
  }
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
