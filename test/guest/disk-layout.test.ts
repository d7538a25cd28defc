import { promises as fs } from 'node:fs';
import { inspectDiskLayout } from '../../guest/disk-layout';
import { expectSameAsSfdiskAndBlkid } from './helpers/cross-check';
import { blkidAt, fileReader, hasTool, ImageWorkspace, MiB, run } from './helpers/disk-image';

const haveVfat = hasTool('mkfs.vfat');
const haveXfs = hasTool('mkfs.xfs');
const testIf = (cond: boolean) => (cond ? test : test.skip);

let ws: ImageWorkspace;
beforeEach(() => {
  ws = new ImageWorkspace();
});
afterEach(() => ws.cleanup());

async function inspect(image: string) {
  const r = fileReader(image);
  try {
    const { size } = await fs.stat(image);
    return { layout: await inspectDiskLayout(r.read, size), reads: r.reads, size };
  } finally {
    r.close();
  }
}

describe('inspectDiskLayout on images made by real tools', () => {
  test('MBR with primaries, an extended partition and logical partitions', async () => {
    const image = ws.blank(128 * MiB);
    ws.partition(
      image,
      [
        'label: dos',
        'label-id: 0x5eed1234',
        'start=2048, size=40960, type=83, bootable',
        'start=43008, size=16384, type=82',
        'start=59392, size=200704, type=5',
        'start=61440, size=40960, type=83',
        'start=104448, size=40960, type=e',
        'start=147456, size=40960, type=83',
        '',
      ].join('\n'),
    );
    ws.placeFilesystem(image, MiB, 20 * MiB, (f) => run('mkfs.ext4', ['-q', '-F', '-L', 'rootfs', '-U', '6f1ac4a2-5b8e-4d1c-9b1a-0c2d3e4f5a6b', f]));
    ws.placeFilesystem(image, 21 * MiB, 8 * MiB, (f) => run('mkswap', ['-L', 'swap0', '-U', '0e3b6c1d-1111-4222-8333-944455556666', f]));
    ws.placeFilesystem(image, 30 * MiB, 20 * MiB, (f) => run('mkfs.ext2', ['-q', '-F', '-L', 'data2', f]));
    if (haveVfat) ws.placeFilesystem(image, 51 * MiB, 20 * MiB, (f) => run('mkfs.vfat', ['-F', '16', '-n', 'DOSDATA', '-i', '1234ABCD', f]));
    ws.placeFilesystem(image, 72 * MiB, 20 * MiB, (f) => run('mkfs.ext3', ['-q', '-F', f]));

    const { layout } = await inspect(image);

    expectSameAsSfdiskAndBlkid(image, layout);
    expect(layout.diskId).toBe('0x5eed1234');
    expect(layout.partitions.map((p) => [p.number, p.type, p.filesystem?.type])).toEqual([
      [1, '83', 'ext4'],
      [2, '82', 'swap'],
      [3, '5', undefined],
      [5, '83', 'ext2'],
      [6, 'e', haveVfat ? 'vfat' : undefined],
      [7, '83', 'ext3'],
    ]);
    expect(layout.partitions[0]).toMatchObject({ bootable: true, typeName: 'Linux', filesystem: { label: 'rootfs' } });
    if (haveVfat) expect(layout.partitions[4].filesystem).toEqual({ type: 'vfat', label: 'DOSDATA', uuid: '1234-ABCD', version: 'FAT16' });
  });

  test('GPT with names, type GUIDs, ESP, XFS root, swap and an LVM PV', async () => {
    const image = ws.blank(512 * MiB);
    ws.partition(
      image,
      [
        'label: gpt',
        'label-id: 2E0A3F4C-6B7D-4E8F-9A0B-1C2D3E4F5A6B',
        'start=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System Partition"',
        'start=133120, size=655360, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"',
        'start=788480, size=32768, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"',
        'start=821248, size=16384, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="pv0"',
        '',
      ].join('\n'),
    );
    if (haveVfat) ws.placeFilesystem(image, MiB, 64 * MiB, (f) => run('mkfs.vfat', ['-F', '32', '-n', 'ESP', f]));
    if (haveXfs) {
      ws.placeFilesystem(image, 65 * MiB, 320 * MiB, (f) => run('mkfs.xfs', ['-q', '-f', '-L', 'xroot', '-m', 'uuid=4b1d2c3e-0000-4000-8000-00000000abcd', f]));
    }
    ws.placeFilesystem(image, 385 * MiB, 16 * MiB, (f) => run('mkswap', [f]));
    // pvcreate needs a block device; write the LVM2 label the way it does (sector 1, PV header at +32).
    const label = Buffer.alloc(512);
    label.write('LABELONE', 0, 'latin1');
    label.writeBigUInt64LE(1n, 8);
    label.writeUInt32LE(32, 20);
    label.write('LVM2 001', 24, 'latin1');
    label.write('Wk2BfpA1b2C3d4E5f6G7h8I9j0K1l2M3', 32, 'latin1');
    const h = await fs.open(image, 'r+');
    await h.write(label, 0, 512, 401 * MiB + 512);
    await h.close();

    const { layout } = await inspect(image);

    expect(layout.partitionTable).toBe('gpt');
    expect(layout.diskId).toBe('2E0A3F4C-6B7D-4E8F-9A0B-1C2D3E4F5A6B');
    expect(layout.partitions.map((p) => [p.number, p.name, p.typeName, p.filesystem?.type])).toEqual([
      [1, 'EFI System Partition', 'EFI System', haveVfat ? 'vfat' : undefined],
      [2, 'root', 'Linux filesystem', haveXfs ? 'xfs' : undefined],
      [3, 'swap', 'Linux swap', 'swap'],
      [4, 'pv0', 'Linux LVM', 'LVM2_member'],
    ]);
    expect(layout.partitions[3].filesystem?.uuid).toBe('Wk2Bfp-A1b2-C3d4-E5f6-G7h8-I9j0-K1l2M3');
    if (haveXfs) expect(layout.partitions[1].filesystem).toMatchObject({ label: 'xroot', uuid: '4b1d2c3e-0000-4000-8000-00000000abcd' });
    // blkid also checks LVM's label CRC, which the hand-written label lacks: it cannot judge that one.
    const judgeable = { ...layout, partitions: layout.partitions.map((p) => (p.number === 4 ? { ...p, filesystem: undefined } : p)) };
    expectSameAsSfdiskAndBlkid(image, judgeable);
  });

  test('a damaged primary GPT header falls back to the backup header', async () => {
    const image = ws.blank(64 * MiB);
    ws.partition(image, 'label: gpt\nstart=2048, size=20480, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="data"\n');
    ws.placeFilesystem(image, MiB, 10 * MiB, (f) => run('mkfs.ext4', ['-q', '-F', '-L', 'gptdata', f]));
    const before = (await inspect(image)).layout;
    const h = await fs.open(image, 'r+');
    await h.write(Buffer.from('garbage!'), 0, 8, 512 + 24); // inside the primary header: its CRC no longer matches
    await h.close();
    const after = (await inspect(image)).layout;
    expect(after).toEqual(before);
    expect(after.partitions[0]).toMatchObject({ name: 'data', filesystem: { type: 'ext4', label: 'gptdata' } });
  });

  test.each([
    ['ext4', (f: string) => run('mkfs.ext4', ['-q', '-F', '-L', 'whole', f])],
    ['vfat', (f: string) => run('mkfs.vfat', ['-n', 'WHOLE', f])],
  ])('a whole-disk %s (no partition table) is reported as the disk file system', async (type, mkfs) => {
    if (type === 'vfat' && !haveVfat) return;
    const image = ws.blank(48 * MiB);
    ws.placeFilesystem(image, 0, 48 * MiB, mkfs);
    const { layout } = await inspect(image);
    const blkid = blkidAt(image, 0);
    expect(layout).toMatchObject({ partitionTable: 'none', partitions: [] });
    expect(layout.filesystem).toMatchObject({ type: blkid.TYPE, label: blkid.LABEL, uuid: blkid.UUID });
    expect(layout.filesystem?.type).toBe(type);
  });

  test('an empty disk has no table and no file system; reads stay inside the disk', async () => {
    const image = ws.blank(10 * MiB);
    const { layout, reads, size } = await inspect(image);
    expect(layout).toEqual({ partitionTable: 'none', sectorSize: 512, partitions: [] });
    expect(reads.every(([o, l]) => o >= 0 && o + l <= size)).toBe(true);
  });

  test('a partition claiming to extend past the disk is listed but not read beyond the end', async () => {
    const image = ws.blank(16 * MiB);
    const mbr = Buffer.alloc(512);
    mbr.writeUInt8(0x83, 446 + 4);
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(1_000_000, 446 + 12);
    mbr.writeUInt8(0x83, 462 + 4);
    mbr.writeUInt32LE(900_000, 462 + 8);
    mbr.writeUInt32LE(2048, 462 + 12);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    const h = await fs.open(image, 'r+');
    await h.write(mbr, 0, 512, 0);
    await h.close();
    const { layout, reads, size } = await inspect(image);
    expect(layout.partitions.map((p) => [p.number, p.start, p.size])).toEqual([
      [1, MiB, 1_000_000 * 512],
      [2, 900_000 * 512, MiB],
    ]);
    expect(reads.every(([o, l]) => o + l <= size)).toBe(true);
  });
});
