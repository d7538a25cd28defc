/**
 * Builds the test guest (tools/test-guest/recipe.ts) offline from Debian packages: debootstrap a minimal bookworm
 * into a directory, configure it like a VMware guest, then lay it out on a sparse, MBR-partitioned raw disk with
 * `mke2fs -d` and GRUB's boot code written directly (no loop devices, no mounts, no libguestfs appliance).
 * Needs root (debootstrap chroots) and deb.debian.org (or VMIGRATE_DEBIAN_MIRROR).
 *
 *   node --import tsx tools/test-guest/build-test-guest.ts            # build into the cache if missing; print path
 *   node --import tsx tools/test-guest/build-test-guest.ts --force    # rebuild
 *
 * Tests use ensureTestGuest() (test-guest.ts), which runs this under a lock.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { installGrubBiosBoot } from './grub-bios-boot';
import { guestFiles, TEST_GUEST_RECIPE, type TestGuestRecipe } from './recipe';
import { testGuestIdentity, testGuestPaths } from './test-guest-paths';

export interface BuildOptions {
  /** Where the finished image goes (written to a temporary name first, renamed when complete). */
  out: string;
  /** debootstrap's package cache, kept between builds so a recipe change does not download everything again. */
  debCacheDir: string;
  mirror?: string;
  recipe?: TestGuestRecipe;
  /** Build log (every command's output); default: discarded. */
  logFile?: string;
}

export interface BuildResult {
  path: string;
  kernel: string;
  rootUuid: string;
  durationMs: number;
  phasesMs: Record<string, number>;
}

export async function buildTestGuest(opts: BuildOptions): Promise<BuildResult> {
  if (process.getuid?.() !== 0) {
    throw new Error('building the test guest needs root (debootstrap chroots); run as root, or set VMIGRATE_TEST_GUEST_IMAGE to a built image');
  }
  const recipe = opts.recipe ?? TEST_GUEST_RECIPE;
  const mirror = opts.mirror ?? process.env.VMIGRATE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  const { rootUuid, diskId } = testGuestIdentity();
  const started = Date.now();
  const phasesMs: Record<string, number> = {};
  await mkdir(path.dirname(opts.out), { recursive: true });
  await mkdir(opts.debCacheDir, { recursive: true });
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
  const run = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => runLogged(cmd, args, log, env);

  // Next to the output (not /tmp, which may be a small tmpfs or mounted nodev): the root tree is ~450 MB.
  const work = await mkdtemp(path.join(path.dirname(opts.out), 'build-'));
  const root = path.join(work, 'root');
  const image = path.join(work, 'disk.img');
  try {
    await phase('debootstrap', async () => {
      // First stage only unpacks; the second stage (dpkg installs) then runs with unsafe I/O (no fsync per file),
      // which halves the time, and with our initramfs settings in place, so the kernel's initramfs is built once.
      await run('debootstrap', [
        '--foreign',
        '--variant=minbase',
        `--include=${recipe.packages.join(',')}`,
        `--cache-dir=${opts.debCacheDir}`,
        recipe.suite,
        root,
        mirror,
      ]);
      await writeGuestFile(root, 'etc/dpkg/dpkg.cfg.d/zz-vmigrate-build', 'force-unsafe-io\n');
      const files = guestFiles(recipe, rootUuid, 'unknown');
      for (const f of ['etc/initramfs-tools/conf.d/vmware-guest.conf']) await writeGuestFile(root, f, files[f]);
      try {
        await run('chroot', [root, '/debootstrap/debootstrap', '--second-stage'], { DEBIAN_FRONTEND: 'noninteractive' });
      } finally {
        await unmountBelow(root);
      }
    });

    const kernel = await phase('configure', async () => {
      const kernels = (await readdir(path.join(root, 'lib/modules'))).filter((k) => existsSync(path.join(root, 'boot', `vmlinuz-${k}`)));
      if (kernels.length !== 1) throw new Error(`expected one kernel in the guest, found ${kernels.join(', ') || 'none'}`);
      const [kver] = kernels;
      for (const [file, content] of Object.entries(guestFiles(recipe, rootUuid, kver))) await writeGuestFile(root, file, content);
      await rm(path.join(root, 'etc/dpkg/dpkg.cfg.d/zz-vmigrate-build'), { force: true });
      for (const dir of recipe.removedModuleDirs) await rm(path.join(root, 'lib/modules', kver, 'kernel', dir), { recursive: true, force: true });
      await run('chroot', [root, 'depmod', kver]);
      await run('chroot', [root, 'update-initramfs', '-u', '-k', kver]);
      // GRUB's modules where grub-install would put them, and a core.img that finds them on the first partition.
      const grubLib = path.join(root, 'usr/lib/grub/i386-pc');
      const grubBoot = path.join(root, 'boot/grub/i386-pc');
      await mkdir(grubBoot, { recursive: true });
      for (const f of await readdir(grubLib)) {
        if (/\.(mod|lst)$/.test(f)) await writeFile(path.join(grubBoot, f), await readFile(path.join(grubLib, f)));
      }
      await run('chroot', [root, 'grub-mkimage', '-O', 'i386-pc', '-o', '/boot/grub/i386-pc/core.img', '-p', '(hd0,msdos1)/boot/grub', 'biosdisk', 'part_msdos', 'ext2']);
      await writeFile(path.join(grubBoot, 'boot.img'), await readFile(path.join(grubLib, 'boot.img')));
      for (const p of recipe.removedPaths) await rm(path.join(root, p), { recursive: true, force: true });
      await mkdir(path.join(root, 'var/lib/apt/lists/partial'), { recursive: true });
      await mkdir(path.join(root, 'var/cache/apt/archives/partial'), { recursive: true });
      return kver;
    });

    await phase('image', async () => {
      await writeFile(image, '');
      await truncate(image, recipe.diskSizeBytes);
      const start = recipe.partitionStartSector;
      await runLogged('sfdisk', ['--quiet', image], log, undefined, `label: dos\nlabel-id: ${diskId}\nstart=${start}, type=83, bootable\n`);
      const fsKiB = (recipe.diskSizeBytes - start * 512) / 1024;
      await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-U', rootUuid, '-d', root, '-E', `offset=${start * 512}`, image, `${fsKiB}k`]);
      const grubBoot = path.join(root, 'boot/grub/i386-pc');
      await installGrubBiosBoot(image, await readFile(path.join(grubBoot, 'boot.img')), await readFile(path.join(grubBoot, 'core.img')));
      await chmod(image, 0o644);
      await rename(image, opts.out);
    });
    return { path: opts.out, kernel, rootUuid, durationMs: Date.now() - started, phasesMs };
  } finally {
    await unmountBelow(root).catch(() => undefined);
    // --one-file-system: never follow a mount that survived into the tree (a /proc left by a killed build).
    await runLogged('rm', ['-rf', '--one-file-system', work], log).catch(() => undefined);
    await new Promise((r) => (log ? log.end(r) : r(undefined)));
  }
}

async function writeGuestFile(root: string, rel: string, content: string): Promise<void> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

/** debootstrap's second stage mounts /proc and /sys in the chroot; a failed one may leave them behind. */
async function unmountBelow(root: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(root + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await runLogged('umount', ['-l', m], undefined);
}

function runLogged(cmd: string, args: string[], log: WriteStream | undefined, env?: NodeJS.ProcessEnv, input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    log?.write(`$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let tail = '';
    const keep = (b: Buffer) => {
      log?.write(b);
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    if (input !== undefined) child.stdin!.end(input);
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (run npm run setup)' : ''}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… failed (${signal ?? `exit ${code}`}):\n${tail}`));
    });
  });
}

if (require.main === module) {
  (async () => {
    const force = process.argv.includes('--force');
    const paths = testGuestPaths();
    if (!force && existsSync(paths.image)) {
      console.log(paths.image);
      return;
    }
    const result = await buildTestGuest({ out: paths.image, debCacheDir: paths.debCacheDir, logFile: paths.buildLog });
    console.error(`[test-guest] built in ${(result.durationMs / 1000).toFixed(0)} s (${JSON.stringify(result.phasesMs)}), log ${paths.buildLog}`);
    console.log(result.path);
  })().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
