/**
 * Builds a test guest variant (tools/test-guest/recipe.ts) offline from Debian packages: the shared base tree
 * (base-tree.ts, one debootstrap), the variant's files and initramfs, then its disks as sparse raw images — MBR or
 * GPT, ext4 (`mke2fs -d`) or XFS (`mkfs.xfs -p`), optionally on LVM (metadata written by lvm-physical-volume.ts), an
 * EFI system partition (`mkfs.fat --offset`, mtools) and GRUB's BIOS boot code written directly — with no loop
 * devices, mounts, device-mapper or libguestfs appliance. Needs root (chroot) and deb.debian.org (or
 * VMIGRATE_DEBIAN_MIRROR).
 *
 *   node --import tsx tools/test-guest/build-test-guest.ts [variant]           # build into the cache if missing; print paths
 *   node --import tsx tools/test-guest/build-test-guest.ts [variant] --force   # rebuild
 *
 * Tests use ensureTestGuest(variant) (test-guest.ts), which runs this under a lock.
 */
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { baseTreeHash, ensureBaseTree, unmountBelow, writeTreeFile } from './base-tree';
import { installGrubBiosBoot } from './grub-bios-boot';
import { dataDiskMarker, guestFiles } from './guest-files';
import { guestIdentity, type GuestIdentity } from './guest-identity';
import { planPhysicalVolume, writePhysicalVolume } from './lvm-physical-volume';
import { ESP_BYTES, FIRST_PARTITION_SECTOR, GUEST_HOSTNAME, TEST_GUEST_BASE, TEST_GUEST_VARIANTS, type GuestVariantName, type TestGuestVariant } from './recipe';
import { runLogged } from './run-logged';
import { testGuestPaths, testGuestRecipeHash } from './test-guest-paths';
import { xfsProtofile } from './xfs-protofile';

const SECTOR = 512;
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const LINUX_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const LVM_TYPE = 'E6D6D379-F507-44C2-A23C-238F2A3DF928';
/** GPT's backup header and partition entries at the end of the disk. */
const GPT_TAIL_SECTORS = 34;
/** A fixed creation time in the LVM metadata, so the image is reproducible. */
const LVM_CREATION_TIME = 1_700_000_000;

export interface BuildOptions {
  variant: GuestVariantName;
  /** Where the finished disks go, boot disk first (written under temporary names, renamed when complete). */
  disks: string[];
  /** Where the base tree is cached. */
  cacheDir: string;
  /** debootstrap's package cache, kept between builds so a recipe change does not download everything again. */
  debCacheDir: string;
  mirror?: string;
  /** Build log (every command's output); default: discarded. */
  logFile?: string;
}

export interface BuildResult {
  disks: string[];
  kernel: string;
  identity: GuestIdentity;
  durationMs: number;
  phasesMs: Record<string, number>;
}

export async function buildTestGuest(opts: BuildOptions): Promise<BuildResult> {
  if (process.getuid?.() !== 0) {
    throw new Error('building the test guest needs root (debootstrap chroots); run as root, or set VMIGRATE_TEST_GUEST_IMAGE to a built image');
  }
  const variant = TEST_GUEST_VARIANTS[opts.variant];
  if (!variant) throw new Error(`unknown test guest variant '${opts.variant}' (known: ${Object.keys(TEST_GUEST_VARIANTS).join(', ')})`);
  if (opts.disks.length !== (variant.dataDisk ? 2 : 1)) throw new Error(`variant ${variant.name} has ${variant.dataDisk ? 2 : 1} disk(s), ${opts.disks.length} path(s) given`);
  const mirror = opts.mirror ?? process.env.VMIGRATE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  const id = guestIdentity(testGuestRecipeHash(variant.name));
  const started = Date.now();
  const phasesMs: Record<string, number> = {};
  const log: WriteStream | undefined = opts.logFile ? createWriteStream(opts.logFile, { flags: 'w' }) : undefined;
  const phase = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    log?.write(`\n=== ${name}\n`);
    try {
      return await body();
    } finally {
      phasesMs[name] = Date.now() - t;
    }
  };
  const run = (cmd: string, args: string[], input?: string) => runLogged(cmd, args, log, { input, env: { MTOOLS_SKIP_CHECK: '1' } });

  await mkdir(path.dirname(opts.disks[0]), { recursive: true });
  // Next to the output (not /tmp, which may be a small tmpfs or mounted nodev): the root tree is ~500 MB.
  const work = await mkdtemp(path.join(path.dirname(opts.disks[0]), `build-${variant.name}-`));
  const root = path.join(work, 'root');
  const esp = path.join(work, 'esp');
  const images = opts.disks.map((_, i) => path.join(work, `disk${i}.img`));
  try {
    const baseTar = await phase('base tree', () => ensureBaseTree({ cacheDir: opts.cacheDir, debCacheDir: opts.debCacheDir, mirror, log }));
    await phase('extract', async () => {
      await mkdir(root);
      await run('tar', ['--numeric-owner', '--xattrs', '-C', root, '-xpf', baseTar]);
    });

    const lvm = variant.root.lvm ? planPhysicalVolume({ ...rootPartition(variant), ...variant.root.lvm, vgName: variant.root.lvm.vg, lvName: variant.root.lvm.lv }) : undefined;
    const kernel = await phase('configure', async () => {
      const kernels = (await readdir(path.join(root, 'lib/modules'))).filter((k) => existsSync(path.join(root, 'boot', `vmlinuz-${k}`)));
      if (kernels.length !== 1) throw new Error(`expected one kernel in the guest, found ${kernels.join(', ') || 'none'}`);
      const [kver] = kernels;
      for (const [file, content] of Object.entries(guestFiles(variant, id, kver, lvm?.mapperPath))) await writeTreeFile(root, file, content);
      await chmod(path.join(root, 'usr/local/sbin/vmigrate-guest-report'), 0o755);
      const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
      await mkdir(wants, { recursive: true });
      await symlink('/etc/systemd/system/vmigrate-guest-report.service', path.join(wants, 'vmigrate-guest-report.service'));
      if (variant.dataDisk) await mkdir(path.join(root, variant.dataDisk.mountpoint.slice(1)), { recursive: true });
      for (const dir of TEST_GUEST_BASE.removedModuleDirs) await rm(path.join(root, 'lib/modules', kver, 'kernel', dir), { recursive: true, force: true });
      await run('chroot', [root, 'depmod', kver]);
      await run('chroot', [root, 'update-initramfs', '-u', '-k', kver]);
      return kver;
    });

    await phase('boot loader', () => (variant.firmware === 'efi' ? prepareEfiBoot(variant, id, root, esp) : prepareBiosBoot(variant, root, run)));

    await phase('disks', async () => {
      await writeFile(images[0], '');
      await truncate(images[0], variant.diskSizeBytes);
      await run('sfdisk', ['--quiet', images[0]], partitionScript(variant, id));
      const part = rootPartition(variant);
      if (variant.firmware === 'efi') await makeEsp(images[0], id, esp, run);
      if (lvm) {
        await writePhysicalVolume(images[0], {
          vgName: variant.root.lvm!.vg,
          lvName: variant.root.lvm!.lv,
          pvId: id.pvId,
          vgId: id.vgId,
          lvId: id.lvId,
          ...part,
          creationTime: LVM_CREATION_TIME,
          creationHost: GUEST_HOSTNAME,
          deviceHint: `/dev/sda${variant.partitionTable === 'gpt' ? 2 : 1}`,
        });
      }
      const fsOffset = lvm ? lvm.lvOffsetBytes : part.partitionOffsetBytes;
      const fsBytes = lvm ? lvm.lvBytes : part.partitionBytes;
      if (variant.root.fs === 'ext4') {
        await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-U', id.rootUuid, '-d', root, '-E', `offset=${fsOffset}`, images[0], `${fsBytes / 1024}k`]);
      } else {
        const proto = path.join(work, 'root.proto');
        const fsImage = path.join(work, 'root.xfs');
        await writeFile(proto, xfsProtofile(root));
        await writeFile(fsImage, '');
        await truncate(fsImage, fsBytes);
        await run('mkfs.xfs', ['-q', '-f', '-L', 'root', '-m', `uuid=${id.rootUuid}`, '-p', proto, fsImage]);
        await run('dd', [`if=${fsImage}`, `of=${images[0]}`, 'bs=1M', `seek=${fsOffset / (1024 * 1024)}`, 'conv=sparse,notrunc', 'status=none']);
      }
      if (variant.firmware === 'bios') {
        const grubBoot = path.join(root, 'boot/grub/i386-pc');
        await installGrubBiosBoot(images[0], await readFile(path.join(grubBoot, 'boot.img')), await readFile(path.join(grubBoot, 'core.img')));
      }
      if (variant.dataDisk) await makeDataDisk(images[1], variant.dataDisk, id, work, run);
      for (const [i, image] of images.entries()) {
        await chmod(image, 0o644);
        await rename(image, opts.disks[i]);
      }
    });
    return { disks: opts.disks, kernel, identity: id, durationMs: Date.now() - started, phasesMs };
  } finally {
    await unmountBelow(root).catch(() => undefined);
    await runLogged('rm', ['-rf', '--one-file-system', work], log).catch(() => undefined);
    await new Promise((r) => (log ? log.end(r) : r(undefined)));
  }
}

/** The partition holding the root file system (or its physical volume): after the ESP on GPT, the first on MBR. */
function rootPartition(v: TestGuestVariant): { partitionOffsetBytes: number; partitionBytes: number } {
  const totalSectors = v.diskSizeBytes / SECTOR;
  const start = FIRST_PARTITION_SECTOR + (v.partitionTable === 'gpt' ? ESP_BYTES / SECTOR : 0);
  // GPT keeps its backup at the end; end the partition on a 1 MiB boundary before it.
  const end = v.partitionTable === 'gpt' ? Math.floor((totalSectors - GPT_TAIL_SECTORS) / 2048) * 2048 : totalSectors;
  return { partitionOffsetBytes: start * SECTOR, partitionBytes: (end - start) * SECTOR };
}

function partitionScript(v: TestGuestVariant, id: GuestIdentity): string {
  const root = rootPartition(v);
  const start = root.partitionOffsetBytes / SECTOR;
  const size = root.partitionBytes / SECTOR;
  if (v.partitionTable === 'mbr') return `label: dos\nlabel-id: ${id.diskId}\nstart=${start}, size=${size}, type=${v.root.lvm ? '8e' : '83'}, bootable\n`;
  return [
    'label: gpt',
    `label-id: ${id.diskGuid}`,
    `start=${FIRST_PARTITION_SECTOR}, size=${ESP_BYTES / SECTOR}, type=${ESP_TYPE}, uuid=${id.espPartitionGuid}, name="EFI System Partition"`,
    `start=${start}, size=${size}, type=${v.root.lvm ? LVM_TYPE : LINUX_TYPE}, uuid=${id.rootPartitionGuid}`,
    '',
  ].join('\n');
}

/** GRUB's modules where grub-install puts them, and a core.img that finds them on the root partition. */
async function prepareBiosBoot(v: TestGuestVariant, root: string, run: (cmd: string, args: string[]) => Promise<string>): Promise<void> {
  const grubLib = path.join(root, 'usr/lib/grub/i386-pc');
  const grubBoot = path.join(root, 'boot/grub/i386-pc');
  await copyModules(grubLib, grubBoot);
  const fsModule = v.root.fs === 'xfs' ? 'xfs' : 'ext2';
  await run('chroot', [root, 'grub-mkimage', '-O', 'i386-pc', '-o', '/boot/grub/i386-pc/core.img', '-p', '(hd0,msdos1)/boot/grub', 'biosdisk', 'part_msdos', fsModule]);
  await writeFile(path.join(grubBoot, 'boot.img'), await readFile(path.join(grubLib, 'boot.img')));
}

/**
 * The ESP's files, staged in `esp`, as Debian's grub-install leaves them on amd64 (it installs the signed chain
 * whether or not Secure Boot is on): shim, MokManager, shim's fallback loader and Debian's signed GRUB in
 * EFI/debian, with EFI/debian/grub.cfg, a stub that finds the root file system by UUID and reads /boot/grub/grub.cfg
 * from it. The removable-media path (EFI/BOOT: shim as BOOTX64.EFI, GRUB, MokManager) only when the recipe says so,
 * as the installer's "force EFI removable media path" does.
 */
async function prepareEfiBoot(v: TestGuestVariant, id: GuestIdentity, root: string, esp: string): Promise<void> {
  await copyModules(path.join(root, 'usr/lib/grub/x86_64-efi'), path.join(root, 'boot/grub/x86_64-efi'));
  await mkdir(path.join(root, 'boot/efi'), { recursive: true });
  const debianDir = path.join(esp, 'EFI/debian');
  await mkdir(debianDir, { recursive: true });
  const fallback = path.join(esp, 'EFI/BOOT');
  const shim = path.join(root, 'usr/lib/shim');
  await copyFile(path.join(shim, 'shimx64.efi.signed'), path.join(debianDir, 'shimx64.efi'));
  await copyFile(path.join(shim, 'mmx64.efi.signed'), path.join(debianDir, 'mmx64.efi'));
  await copyFile(path.join(shim, 'fbx64.efi.signed'), path.join(debianDir, 'fbx64.efi'));
  await copyFile(path.join(shim, 'BOOTX64.CSV'), path.join(debianDir, 'BOOTX64.CSV'));
  await copyFile(path.join(root, 'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed'), path.join(debianDir, 'grubx64.efi'));
  await writeFile(path.join(debianDir, 'grub.cfg'), `search.fs_uuid ${id.rootUuid} root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n`);
  if (v.efiFallbackPath) {
    await mkdir(fallback, { recursive: true });
    await copyFile(path.join(debianDir, 'shimx64.efi'), path.join(fallback, 'BOOTX64.EFI'));
    await copyFile(path.join(debianDir, 'grubx64.efi'), path.join(fallback, 'grubx64.efi'));
    await copyFile(path.join(debianDir, 'mmx64.efi'), path.join(fallback, 'mmx64.efi'));
  }
}

async function copyModules(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const f of await readdir(from)) {
    if (/\.(mod|lst)$/.test(f)) await copyFile(path.join(from, f), path.join(to, f));
  }
}

/**
 * FAT32 in the ESP's place in the image (mkfs.fat --offset), filled from the staging directory with mtools. One
 * sector per cluster: FAT32 needs at least 65525 clusters, and 128 MiB in larger clusters would be too few for
 * mtools (and firmware) to take it for FAT32.
 */
async function makeEsp(image: string, id: GuestIdentity, staged: string, run: (cmd: string, args: string[]) => Promise<string>): Promise<void> {
  await run('mkfs.fat', ['-F', '32', '-s', '1', '-h', String(FIRST_PARTITION_SECTOR), '-n', 'EFI', '-i', id.espVolumeId, `--offset=${FIRST_PARTITION_SECTOR}`, image, String(ESP_BYTES / 1024)]);
  const target = `${image}@@${FIRST_PARTITION_SECTOR * SECTOR}`;
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const relPath = `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        await run('mmd', ['-i', target, `::${relPath}`]);
        await walk(path.join(dir, entry.name), relPath);
      } else await run('mcopy', ['-i', target, path.join(dir, entry.name), `::${relPath}`]);
    }
  };
  await walk(staged, '');
}

/** Where a data disk's scratch partition is (bytes): after its file system, up to GPT's backup on a 1 MiB boundary. */
export function scratchRegion(disk: NonNullable<TestGuestVariant['dataDisk']>): { offset: number; length: number } {
  const start = FIRST_PARTITION_SECTOR + disk.fsBytes / SECTOR;
  const end = Math.floor((disk.sizeBytes / SECTOR - GPT_TAIL_SECTORS) / 2048) * 2048;
  return { offset: start * SECTOR, length: (end - start) * SECTOR };
}

/** The data disk: GPT, a Linux partition with ext4 (by UUID in the guest's fstab) holding the marker file, and scratch. */
async function makeDataDisk(
  image: string,
  disk: NonNullable<TestGuestVariant['dataDisk']>,
  id: GuestIdentity,
  work: string,
  run: (cmd: string, args: string[], input?: string) => Promise<string>,
): Promise<void> {
  const content = path.join(work, 'data');
  await mkdir(content, { recursive: true });
  await writeFile(path.join(content, 'vmigrate-marker'), `${dataDiskMarker(id)}\n`);
  await writeFile(image, '');
  await truncate(image, disk.sizeBytes);
  const fsSectors = disk.fsBytes / SECTOR;
  const scratch = scratchRegion(disk);
  await run(
    'sfdisk',
    ['--quiet', image],
    [
      'label: gpt',
      `label-id: ${id.dataDiskGuid}`,
      `start=${FIRST_PARTITION_SECTOR}, size=${fsSectors}, type=${LINUX_TYPE}, uuid=${id.dataPartitionGuid}, name="srv"`,
      `start=${scratch.offset / SECTOR}, size=${scratch.length / SECTOR}, type=${LINUX_TYPE}, uuid=${id.scratchPartitionGuid}, name="scratch"`,
      '',
    ].join('\n'),
  );
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'srv', '-U', id.dataUuid, '-d', content, '-E', `offset=${FIRST_PARTITION_SECTOR * SECTOR}`, image, `${disk.fsBytes / 1024}k`]);
}

/** Earlier builds of the same variant (other recipe hashes) and base trees no variant uses: never read again. */
async function pruneStaleImages(dir: string, variant: string, keepStem: string): Promise<void> {
  for (const f of await readdir(dir)) {
    const stale = f.startsWith(`${variant}-`) && !f.startsWith(keepStem) && /\.(img|build\.log)$/.test(f);
    const oldBase = f.startsWith('base-') && f.endsWith('.tar') && f !== `base-${baseTreeHash()}.tar`;
    if (stale || oldBase) await rm(path.join(dir, f), { force: true });
  }
}

if (require.main === module) {
  (async () => {
    const force = process.argv.includes('--force');
    const name = (process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'bios') as GuestVariantName;
    const paths = testGuestPaths(name);
    if (!force && paths.disks.every((d) => existsSync(d))) {
      console.log(paths.disks.join('\n'));
      return;
    }
    const result = await buildTestGuest({ variant: name, disks: paths.disks, cacheDir: paths.dir, debCacheDir: paths.debCacheDir, logFile: paths.buildLog });
    await pruneStaleImages(paths.dir, name, path.basename(paths.disks[0], '.img'));
    console.error(`[test-guest] ${name} built in ${(result.durationMs / 1000).toFixed(0)} s (${JSON.stringify(result.phasesMs)}), log ${paths.buildLog}`);
    console.log(result.disks.join('\n'));
  })().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
