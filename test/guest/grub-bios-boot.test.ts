import { readFileSync } from 'node:fs';
import { installGrubBiosBoot } from '../../tools/test-guest/grub-bios-boot';
import { ImageWorkspace, MiB } from './helpers/disk-image';

let ws: ImageWorkspace;
beforeEach(() => {
  ws = new ImageWorkspace();
});
afterEach(() => ws.cleanup());

/** A stand-in boot.img and a 3-sector core.img whose diskboot sector carries grub-mkimage's default blocklist. */
function grubImages(): { boot: Buffer; core: Buffer } {
  const boot = Buffer.alloc(512, 0xbb);
  const core = Buffer.alloc(3 * 512 - 100, 0xcc);
  core.fill(0, 500 - 12, 512); // terminator below, default entry at the end
  core.writeBigUInt64LE(2n, 500);
  core.writeUInt16LE(2, 508);
  core.writeUInt16LE(0x820, 510);
  return { boot, core };
}

describe("GRUB's BIOS boot code written like grub-bios-setup embeds it", () => {
  test('boot.img in the MBR pointing at core.img in the gap, partition table and disk id kept', async () => {
    const image = ws.blank(8 * MiB);
    ws.partition(image, 'label: dos\nlabel-id: 0x1234abcd\nstart=2048, type=83, bootable\n');
    const before = readFileSync(image).subarray(0, 512);
    const { boot, core } = grubImages();
    expect(await installGrubBiosBoot(image, boot, core)).toEqual({ coreSectors: 3 });

    const disk = readFileSync(image);
    const mbr = disk.subarray(0, 512);
    expect(mbr.subarray(0, 3)).toEqual(boot.subarray(0, 3)); // the jump over the BPB
    expect(mbr.readBigUInt64LE(0x5c)).toBe(1n); // core.img starts at sector 1
    expect(mbr[0x64]).toBe(0xff); // boot from the drive the BIOS booted
    expect([mbr[0x66], mbr[0x67]]).toEqual([0x90, 0x90]);
    expect(mbr.subarray(0x1b8)).toEqual(before.subarray(0x1b8)); // disk id, partition table, 55AA
    expect(mbr.readUInt32LE(0x1b8)).toBe(0x1234abcd);

    const written = disk.subarray(512, 512 + 3 * 512);
    expect(written.subarray(0, 500 - 12)).toEqual(core.subarray(0, 500 - 12));
    // One blocklist entry: sectors 2.. (the rest of core.img), loaded at 0x820:0, then a terminator.
    expect(written.readBigUInt64LE(500)).toBe(2n);
    expect(written.readUInt16LE(508)).toBe(2);
    expect(written.readUInt16LE(510)).toBe(0x820);
    expect(written.subarray(488, 500)).toEqual(Buffer.alloc(12));
    expect(written.subarray(512, 512 + core.length - 512)).toEqual(core.subarray(512));
    expect(written.subarray(core.length)).toEqual(Buffer.alloc(3 * 512 - core.length)); // padded with zeros
    expect(disk.subarray(2048 * 512 - 512, 2048 * 512)).toEqual(Buffer.alloc(512)); // the partition is not touched
  });

  test('refuses a disk without a partition table, or a gap too small for core.img', async () => {
    const { boot, core } = grubImages();
    await expect(installGrubBiosBoot(ws.blank(MiB), boot, core)).rejects.toThrow(/no MBR partition table/);
    const tight = ws.blank(8 * MiB);
    ws.partition(tight, 'label: dos\nstart=3, type=83\n');
    await expect(installGrubBiosBoot(tight, boot, core)).rejects.toThrow(/needs 3 sectors after the MBR but the first partition starts at sector 3/);
  });
});
