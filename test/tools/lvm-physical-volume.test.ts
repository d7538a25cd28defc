import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dashed, EXTENT_BYTES, PE_START_BYTES, writePhysicalVolume } from '../../tools/test-guest/lvm-physical-volume';

const MiB = 1024 * 1024;

/**
 * The test guests' LVM metadata, read by the real LVM tools of this machine (through a loop device, with no
 * device-mapper: the logical volume is listed, not activated). The guest booting from it is test/guest-boot's.
 */
describe('an LVM physical volume written without LVM', () => {
  let dir: string;
  let loop = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lvm-pv-'));
  });
  afterAll(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a PV with one VG and one linear LV over all its extents, as pvcreate/vgcreate/lvcreate leave them', async () => {
    const image = path.join(dir, 'disk.img');
    writeFileSync(image, '');
    truncateSync(image, 80 * MiB);
    const partitionOffsetBytes = 8 * MiB;
    const spec = {
      vgName: 'vmguest-vg',
      lvName: 'root',
      pvId: 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6',
      vgId: 'Q7r8S9t0U1v2W3x4Y5z6A7b8C9d0E1f2',
      lvId: 'g3H4i5J6k7L8m9N0o1P2q3R4s5T6u7V8',
      partitionOffsetBytes,
      partitionBytes: 72 * MiB,
      creationTime: 1_700_000_000,
      creationHost: 'vmguest',
      deviceHint: '/dev/sda2',
    };
    const layout = await writePhysicalVolume(image, spec);
    expect(layout).toEqual({ lvOffsetBytes: partitionOffsetBytes + PE_START_BYTES, lvBytes: 17 * EXTENT_BYTES, extents: 17, mapperPath: '/dev/mapper/vmguest--vg-root' });

    loop = execFileSync('losetup', ['--find', '--show', '--read-only', '--offset', String(partitionOffsetBytes), '--sizelimit', String(spec.partitionBytes), image]).toString().trim();
    const lvm = (cmd: string, fields: string) =>
      JSON.parse(
        execFileSync('lvm', [cmd, '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', fields, '--devices', loop], { env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } }).toString(),
      ).report[0];
    expect(lvm('pvs', 'pv_name,pv_uuid,vg_name,pv_size,pe_start,pv_pe_count').pv).toEqual([
      { pv_name: loop, pv_uuid: dashed(spec.pvId), vg_name: 'vmguest-vg', pv_size: String(17 * EXTENT_BYTES), pe_start: String(PE_START_BYTES), pv_pe_count: '17' },
    ]);
    expect(lvm('vgs', 'vg_name,vg_uuid,vg_extent_size,vg_free').vg).toEqual([{ vg_name: 'vmguest-vg', vg_uuid: dashed(spec.vgId), vg_extent_size: String(EXTENT_BYTES), vg_free: '0' }]);
    expect(lvm('lvs', 'lv_name,lv_uuid,lv_size,segtype,seg_pe_ranges').lv).toEqual([
      { lv_name: 'root', lv_uuid: dashed(spec.lvId), lv_size: String(17 * EXTENT_BYTES), segtype: 'linear', seg_pe_ranges: `${loop}:0-16` },
    ]);
  });

  it('refuses ids LVM would not accept', async () => {
    await expect(
      writePhysicalVolume('/nonexistent', { vgName: 'v', lvName: 'l', pvId: 'short', vgId: 'x'.repeat(32), lvId: 'y'.repeat(32), partitionOffsetBytes: 0, partitionBytes: 8 * MiB, creationTime: 0, creationHost: 'h', deviceHint: '/dev/sda' }),
    ).rejects.toThrow("pvId must be 32 characters of [0-9A-Za-z], got 'short'");
  });
});
