/**
 * Formats we cannot create here without extra tools or block devices (LUKS, btrfs, NTFS, BitLocker, hibernation
 * swap): minimal headers written byte for byte from the on-disk specs, checked against blkid where it accepts them.
 */
import { writeFileSync } from 'node:fs';
import { inspectDiskLayout } from '../../guest/disk-layout';
import { blkidAt, ImageWorkspace, MiB } from './helpers/disk-image';

let ws: ImageWorkspace;
beforeEach(() => {
  ws = new ImageWorkspace();
});
afterEach(() => ws.cleanup());

function diskWith(header: Buffer, at = 0, size = 4 * MiB): Buffer {
  const disk = Buffer.alloc(size);
  header.copy(disk, at);
  return disk;
}

const inspect = (disk: Buffer) => inspectDiskLayout(async (o, l) => disk.subarray(o, o + l), disk.length);

describe('file system probes on hand-built headers', () => {
  test.each([1, 2])('LUKS%i is reported as encrypted, with its UUID (blkid agrees)', async (version) => {
    const h = Buffer.alloc(4096);
    Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(h, 0);
    h.writeUInt16BE(version, 6);
    if (version === 1) {
      h.write('aes', 8, 'latin1');
      h.write('xts-plain64', 40, 'latin1');
      h.write('sha256', 72, 'latin1');
      h.writeUInt32BE(4096, 104);
    } else {
      h.writeBigUInt64BE(16384n, 8);
      h.write('secret-root', 24, 'latin1');
    }
    h.write('7a4f9b1c-2d3e-4f50-8a6b-7c8d9e0f1a2b', 168, 'latin1');
    const disk = diskWith(h);

    const layout = await inspect(disk);

    expect(layout.encrypted).toBe(true);
    expect(layout.filesystem).toMatchObject({ type: 'crypto_LUKS', uuid: '7a4f9b1c-2d3e-4f50-8a6b-7c8d9e0f1a2b', version: String(version) });
    if (version === 2) expect(layout.filesystem?.label).toBe('secret-root');
    if (version === 1) {
      const image = ws.blank(disk.length);
      writeFileSync(image, disk);
      expect(blkidAt(image, 0)).toMatchObject({ TYPE: 'crypto_LUKS', UUID: '7a4f9b1c-2d3e-4f50-8a6b-7c8d9e0f1a2b' });
    }
  });

  test('btrfs: label and fsid from the superblock at 64 KiB', async () => {
    const sb = Buffer.alloc(4096);
    Buffer.from('0123456789abcdeffedcba9876543210', 'hex').copy(sb, 0x20);
    sb.write('_BHRfS_M', 0x40, 'latin1');
    sb.write('pool0', 0x12b, 'utf8');
    const layout = await inspect(diskWith(sb, 0x10000));
    expect(layout.filesystem).toEqual({ type: 'btrfs', label: 'pool0', uuid: '01234567-89ab-cdef-fedc-ba9876543210' });
  });

  test('NTFS: serial as UUID; BitLocker: encrypted', async () => {
    const ntfs = Buffer.alloc(512);
    ntfs.write('NTFS    ', 3, 'latin1');
    ntfs.writeBigUInt64LE(0x01d2c3b4a5968778n, 0x48);
    ntfs[510] = 0x55;
    ntfs[511] = 0xaa;
    expect((await inspect(diskWith(ntfs))).filesystem).toEqual({ type: 'ntfs', uuid: '01D2C3B4A5968778' });

    const fve = Buffer.alloc(512);
    fve.write('-FVE-FS-', 3, 'latin1');
    fve[510] = 0x55;
    fve[511] = 0xaa;
    const layout = await inspect(diskWith(fve));
    expect(layout).toMatchObject({ partitionTable: 'none', encrypted: true, filesystem: { type: 'BitLocker' } });
  });

  test('a hibernation image in swap is reported as swsuspend', async () => {
    const page = Buffer.alloc(4096);
    page.write('S1SUSPEND', 4096 - 10, 'latin1');
    expect((await inspect(diskWith(page))).filesystem).toEqual({ type: 'swsuspend' });
  });

  test('ext2/3/4 are told apart by feature flags, as blkid does', async () => {
    const ext = (compat: number, incompat: number, roCompat: number) => {
      const sb = Buffer.alloc(1024);
      sb.writeUInt16LE(0xef53, 56);
      sb.writeUInt32LE(compat, 92);
      sb.writeUInt32LE(incompat, 96);
      sb.writeUInt32LE(roCompat, 100);
      return inspect(diskWith(sb, 1024)).then((l) => l.filesystem?.type);
    };
    expect(await ext(0, 0x2, 0x3)).toBe('ext2');
    expect(await ext(0x4, 0x2, 0x3)).toBe('ext3');
    expect(await ext(0x4, 0x2 | 0x40, 0x3)).toBe('ext4'); // extents
    expect(await ext(0, 0x2, 0x3 | 0x8)).toBe('ext4'); // huge_file, no journal
  });
});
