import { readFileSync, writeFileSync } from 'node:fs';
import { inspectDiskLayout } from '../../guest/disk-layout';
import { inspectGuestDisks, libguestfsDevice, parseInspectorXml } from '../../guest/libguestfs-inspection';
import { fileReader, ImageWorkspace, MiB, run } from './helpers/disk-image';

let ws: ImageWorkspace;
beforeEach(() => {
  ws = new ImageWorkspace();
});
afterEach(() => ws.cleanup());

async function layoutOf(image: string, size: number) {
  const r = fileReader(image);
  try {
    return await inspectDiskLayout(r.read, size);
  } finally {
    r.close();
  }
}

// virt-inspector's answer for the test guest (tools/test-guest), cut down to two of its 153 packages.
const TEST_GUEST_XML = `<?xml version="1.0"?>
<operatingsystems>
  <operatingsystem>
    <root>/dev/sda1</root>
    <name>linux</name>
    <arch>x86_64</arch>
    <distro>debian</distro>
    <product_name>12.15</product_name>
    <major_version>12</major_version>
    <minor_version>15</minor_version>
    <package_format>deb</package_format>
    <package_management>apt</package_management>
    <hostname>vmguest</hostname>
    <osinfo>debian12</osinfo>
    <mountpoints>
      <mountpoint dev="/dev/sda1">/</mountpoint>
    </mountpoints>
    <filesystems>
      <filesystem dev="/dev/sda1">
        <type>ext4</type>
        <label>root</label>
        <uuid>5a1e0b0e-7e57-4a11-9e57-0000000000a1</uuid>
      </filesystem>
    </filesystems>
    <applications>
      <application><name>adduser</name><version>3.134</version></application>
      <application><name>open-vm-tools</name><epoch>2</epoch><version>12.2.0</version><release>1+deb12u4</release></application>
    </applications>
  </operatingsystem>
</operatingsystems>
`;

describe('libguestfs inspection', () => {
  test("virt-inspector's XML: OS, version, mount points, file systems, packages", () => {
    const [os] = parseInspectorXml(TEST_GUEST_XML);
    expect(os).toEqual({
      root: '/dev/sda1',
      name: 'linux',
      distro: 'debian',
      arch: 'x86_64',
      product: '12.15',
      major: 12,
      minor: 15,
      hostname: 'vmguest',
      osinfo: 'debian12',
      mountpoints: [{ device: '/dev/sda1', path: '/' }],
      filesystems: [{ device: '/dev/sda1', type: 'ext4', label: 'root', uuid: '5a1e0b0e-7e57-4a11-9e57-0000000000a1' }],
      applications: ['adduser', 'open-vm-tools'],
    });
    expect(parseInspectorXml('<?xml version="1.0"?>\n<operatingsystems/>\n')).toEqual([]);
  });

  test('device names as libguestfs gives them to the disks it was handed', () => {
    expect([libguestfsDevice(0), libguestfsDevice(0, 2), libguestfsDevice(1, 1), libguestfsDevice(25), libguestfsDevice(26, 3)]).toEqual([
      '/dev/sda',
      '/dev/sda2',
      '/dev/sdb1',
      '/dev/sdz',
      '/dev/sdaa3',
    ]);
  });

  test('a blank disk needs no appliance: nothing to convert, and it says so', async () => {
    const image = ws.blank(16 * MiB);
    const result = await inspectGuestDisks({ drives: [{ uri: image, format: 'raw' }], layouts: [await layoutOf(image, 16 * MiB)] });
    expect(result).toMatchObject({ osFamily: 'unknown', convertible: false, encrypted: false, partitionTable: 'none', firmware: 'bios', applianceMs: 0, filesystems: [] });
    expect(result.warnings).toEqual(['no file system found on the disks: there is no operating system to convert']);
  });

  test('an encrypted (LUKS) partition is named, and with nothing else to look in no appliance is started', async () => {
    const image = ws.blank(16 * MiB);
    ws.partition(image, 'label: dos\nstart=2048, type=83\n');
    // A LUKS2 header (magic, version, UUID) at the partition's start, as cryptsetup writes it.
    const disk = Buffer.alloc(16 * MiB);
    readFileSync(image).copy(disk);
    const h = disk.subarray(MiB);
    Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(h, 0);
    h.writeUInt16BE(2, 6);
    h.writeBigUInt64BE(16384n, 8);
    h.write('6f9ed638-ed44-4e5f-9dca-077315c3e2cf', 168, 'latin1');
    writeFileSync(image, disk);
    const result = await inspectGuestDisks({ drives: [{ uri: image, format: 'raw' }], layouts: [await layoutOf(image, 16 * MiB)] });
    expect(result).toMatchObject({ osFamily: 'unknown', convertible: false, encrypted: true, partitionTable: 'mbr', applianceMs: 0 });
    expect(result.filesystems).toEqual([{ device: '/dev/sda1', type: 'crypto_LUKS', uuid: '6f9ed638-ed44-4e5f-9dca-077315c3e2cf', encrypted: true, label: undefined }]);
    expect(result.warnings[0]).toMatch(/^encrypted volume\(s\) \/dev\/sda1 \(crypto_LUKS\): .*copied as-is/);
  });

  test('an EFI system partition beside a BIOS boot partition means BIOS (GRUB embedded for BIOS), as virt-v2v decides', async () => {
    // Swap in both, so there is nothing an appliance could find an OS in: the decision is the partition table's alone.
    const hybrid = ws.blank(16 * MiB);
    ws.partition(hybrid, 'label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=4096, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n');
    ws.placeFilesystem(hybrid, 2 * MiB, 10 * MiB, (f) => run('mkswap', [f]));
    ws.placeFilesystem(hybrid, MiB, MiB, (f) => run('mkswap', [f]));
    expect(await inspectGuestDisks({ drives: [{ uri: hybrid, format: 'raw' }], layouts: [await layoutOf(hybrid, 16 * MiB)] })).toMatchObject({ firmware: 'bios', partitionTable: 'gpt', applianceMs: 0 });
    const uefi = ws.blank(16 * MiB);
    ws.partition(uefi, 'label: gpt\nstart=4096, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n');
    ws.placeFilesystem(uefi, 2 * MiB, 10 * MiB, (f) => run('mkswap', [f]));
    expect(await inspectGuestDisks({ drives: [{ uri: uefi, format: 'raw' }], layouts: [await layoutOf(uefi, 16 * MiB)] })).toMatchObject({ firmware: 'efi', applianceMs: 0 });
  });

  test('GPT with an EFI system partition and a data disk, no OS: the appliance looks, finds none, firmware is UEFI', async () => {
    const boot = ws.blank(64 * MiB);
    ws.partition(boot, 'label: gpt\nstart=2048, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=22528, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n');
    ws.placeFilesystem(boot, MiB, 10 * MiB, (f) => run('mkfs.vfat', ['-n', 'ESP', f]));
    ws.placeFilesystem(boot, 11 * MiB, 52 * MiB, (f) => run('mkfs.ext4', ['-q', '-F', '-L', 'data', '-U', '11111111-2222-4333-8444-555555555555', f]));
    const data = ws.blank(32 * MiB);
    run('mkfs.ext2', ['-q', '-F', '-L', 'logs', data]);
    const result = await inspectGuestDisks({
      drives: [
        { uri: boot, format: 'raw' },
        { uri: data, format: 'raw' },
      ],
      layouts: [await layoutOf(boot, 64 * MiB), await layoutOf(data, 32 * MiB)],
    });
    expect(result).toMatchObject({
      osFamily: 'unknown',
      convertible: false,
      firmware: 'efi',
      partitionTable: 'gpt',
      disks: [
        { index: 0, partitionTable: 'gpt' },
        { index: 1, partitionTable: 'none' },
      ],
    });
    expect(result.filesystems.map((f) => [f.device, f.type, f.label])).toEqual([
      ['/dev/sda1', 'vfat', 'ESP'],
      ['/dev/sda2', 'ext4', 'data'],
      ['/dev/sdb', 'ext2', 'logs'],
    ]);
    expect(result.applianceMs).toBeGreaterThan(0);
    expect(result.warnings).toEqual(['libguestfs inspection found no operating system on the disks (a data-only disk set, or an OS it does not recognise)']);
  }, 600_000);
});
