import { open } from 'node:fs/promises';

/**
 * Makes an MBR-partitioned disk image BIOS-bootable with GRUB, the way `grub-bios-setup` does when it embeds
 * core.img in the gap between the MBR and the first partition. We do it ourselves because grub-bios-setup insists
 * on mapping the host directory holding core.img to a BIOS disk, which fails for an image file that is not the
 * host's root disk (and loop devices are not available everywhere this is built).
 *
 * Layout written (GRUB 2.06, i386-pc):
 *   sector 0      boot.img with the disk's own BPB area, signature and partition table kept, the kernel sector
 *                 (0x5c) pointing at sector 1 and the "buggy BIOS drive number" jump replaced by NOPs (0x66);
 *   sectors 1..n  core.img, whose first sector (diskboot) ends with a blocklist {start 2, n-1 sectors, segment 0x820}.
 * No Reed-Solomon redundancy is added (as `grub-bios-setup --no-rs-codes`).
 */

const SECTOR = 512;
// Offsets in boot.img (grub-core/boot/i386/pc/boot.S, include/grub/i386/pc/boot.h).
const BPB_START = 0x03;
const BPB_END = 0x5a;
const KERNEL_SECTOR = 0x5c;
const BOOT_DRIVE = 0x64;
const DRIVE_CHECK = 0x66;
const WINDOWS_NT_MAGIC = 0x1b8; // disk signature, then the partition table and 0x55AA: kept from the disk
// A blocklist entry in diskboot.img: u64 start sector, u16 sector count, u16 load segment.
const BLOCKLIST_ENTRY = 12;
// GRUB_BOOT_I386_PC_KERNEL_SEG (0x800) + one sector (0x20 paragraphs): where the second sector of core.img goes.
const FIRST_LOAD_SEGMENT = 0x820;

export async function installGrubBiosBoot(image: string, bootImg: Buffer, coreImg: Buffer): Promise<{ coreSectors: number }> {
  if (bootImg.length !== SECTOR) throw new Error(`boot.img must be ${SECTOR} bytes, got ${bootImg.length}`);
  const coreSectors = Math.ceil(coreImg.length / SECTOR);
  const fh = await open(image, 'r+');
  try {
    const mbr = Buffer.alloc(SECTOR);
    await fh.read(mbr, 0, SECTOR, 0);
    if (mbr.readUInt16LE(510) !== 0xaa55) throw new Error(`${image} has no MBR partition table; partition it first`);
    const firstPartitionStart = Math.min(
      ...[0, 1, 2, 3].map((i) => mbr.readUInt32LE(0x1be + i * 16 + 8)).filter((lba) => lba > 0),
    );
    if (1 + coreSectors > firstPartitionStart) {
      throw new Error(`core.img needs ${coreSectors} sectors after the MBR but the first partition starts at sector ${firstPartitionStart}`);
    }

    const boot = Buffer.from(bootImg);
    mbr.copy(boot, BPB_START, BPB_START, BPB_END);
    boot.writeBigUInt64LE(1n, KERNEL_SECTOR);
    boot[BOOT_DRIVE] = 0xff; // use the drive the BIOS booted from
    boot[DRIVE_CHECK] = 0x90;
    boot[DRIVE_CHECK + 1] = 0x90;
    mbr.copy(boot, WINDOWS_NT_MAGIC, WINDOWS_NT_MAGIC, SECTOR);

    const core = Buffer.alloc(coreSectors * SECTOR);
    coreImg.copy(core);
    // Clear the blocklists grub-mkimage left (they end at the first entry with a zero length), then write ours.
    const first = SECTOR - BLOCKLIST_ENTRY;
    for (let at = first; at > 0 && core.readUInt16LE(at + 8) !== 0; at -= BLOCKLIST_ENTRY) core.fill(0, at, at + BLOCKLIST_ENTRY);
    core.writeBigUInt64LE(2n, first);
    core.writeUInt16LE(coreSectors - 1, first + 8);
    core.writeUInt16LE(FIRST_LOAD_SEGMENT, first + 10);
    core.fill(0, first - BLOCKLIST_ENTRY, first); // terminator

    await fh.write(core, 0, core.length, SECTOR);
    await fh.write(boot, 0, SECTOR, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { coreSectors };
}
