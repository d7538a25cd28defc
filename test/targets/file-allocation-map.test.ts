import { mkdtempSync, rmSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileAllocationMap, parseFilefragOutput } from '../../targets/local/file-allocation-map';

const MiB = 1024 * 1024;

describe('fileAllocationMap', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-fiemap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reports written ranges as data and the rest as holes', async () => {
    const file = path.join(dir, 'sparse.img');
    const h = await fs.open(file, 'w');
    await h.truncate(64 * MiB);
    await h.write(randomBytes(MiB), 0, MiB, 8 * MiB);
    await h.write(randomBytes(4096), 0, 4096, 40 * MiB);
    await h.close();

    const map = await fileAllocationMap(file, 64 * MiB);
    if (map === undefined) return; // filesystem without FIEMAP: callers fall back to reading everything
    expect(map.reduce((n, e) => n + e.length, 0)).toBe(64 * MiB);
    const data = map.filter((e) => !e.zero);
    // Filesystems may round allocation up, never drop written bytes.
    const covers = (off: number, len: number) => data.some((e) => e.offset <= off && e.offset + e.length >= off + len);
    expect(covers(8 * MiB, MiB)).toBe(true);
    expect(covers(40 * MiB, 4096)).toBe(true);
    expect(data.reduce((n, e) => n + e.length, 0)).toBeLessThan(4 * MiB);
  });

  test('is undefined (not "all holes") when the file cannot be mapped', async () => {
    expect(await fileAllocationMap(path.join(dir, 'missing.img'), MiB)).toBeUndefined();
  });
});

describe('parseFilefragOutput', () => {
  // Real output: the summary counts physically discontiguous fragments (2), not rows (3).
  const sample = [
    'Filesystem type is: ef53',
    'File size of x is 10485760 (10485760 blocks of 1 bytes)',
    ' ext:     logical_offset:        physical_offset: length:   expected: flags:',
    '   0:        0..    65535:  100000..  165535:  65536:',
    '   1:    65536..   131071:  165536..  231071:  65536:             ',
    '   2:  1048576..  1052671: 9000000.. 9004095:   4096:     231072: last',
    'x: 2 extents found',
  ].join('\n');

  test('maps rows to data extents and the gaps to holes', () => {
    expect(parseFilefragOutput(sample, 10 * MiB)).toEqual([
      { offset: 0, length: 131072, zero: false },
      { offset: 131072, length: MiB - 131072, zero: true },
      { offset: MiB, length: 4096, zero: false },
      { offset: MiB + 4096, length: 9 * MiB - 4096, zero: true },
    ]);
  });

  test('rejects output it does not understand', () => {
    expect(parseFilefragOutput(sample.replace('   1:', '   7:'), 10 * MiB)).toBeUndefined();
    expect(parseFilefragOutput('x: FIBMAP/FIEMAP unsupported', MiB)).toBeUndefined();
    expect(parseFilefragOutput(sample.split('\n').slice(0, -1).join('\n'), MiB)).toBeUndefined();
  });

  test('never trusts a FUSE file system, which answers "0 extents" for a file full of data', () => {
    // Real output of filefrag on a 64 MiB file with 2 MiB of data, through a bindfs mount.
    const fuse = ['Filesystem type is: 65735546', 'File size of /mnt/v is 67108864 (67108864 blocks of 1 bytes)', '/mnt/v: 0 extents found'].join('\n');
    expect(parseFilefragOutput(fuse, 64 * MiB)).toBeUndefined();
  });
});
