/**
 * The root file system every test guest variant starts from: one debootstrap of a minimal Debian with the union of
 * the variants' packages (kernel, systemd, VMware's guest tools, both GRUB platforms, shim and signed GRUB, LVM, XFS
 * tools), kept as a tar file in the cache. A variant's own files, initramfs and disk layout are applied to a copy of
 * it, so changing a variant rebuilds that variant in seconds instead of repeating the two-minute debootstrap.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TEST_GUEST_BASE } from './recipe';
import { runLogged } from './run-logged';

/** Identifies the base tree's content: the base recipe and this file. */
export function baseTreeHash(): string {
  return createHash('sha256').update(JSON.stringify(TEST_GUEST_BASE)).update(readFileSync(__filename)).digest('hex').slice(0, 16);
}

/**
 * The base tree's tar file in `cacheDir`, made first when missing (under the caller's lock). Extract it with
 * `tar --numeric-owner -xpf` as root.
 */
export async function ensureBaseTree(opts: { cacheDir: string; debCacheDir: string; mirror: string; log?: WriteStream }): Promise<string> {
  const tarFile = path.join(opts.cacheDir, `base-${baseTreeHash()}.tar`);
  if (existsSync(tarFile)) return tarFile;
  await mkdir(opts.debCacheDir, { recursive: true });
  const work = await mkdtemp(path.join(opts.cacheDir, 'base-build-'));
  const root = path.join(work, 'root');
  const run = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => runLogged(cmd, args, opts.log, { env });
  try {
    // First stage only unpacks; the second (dpkg installs) then runs with unsafe I/O (no fsync per file), which halves
    // its time, and with MODULES=list already in place, so the kernel's postinst builds a small initramfs.
    await run('debootstrap', [
      '--foreign',
      '--variant=minbase',
      `--include=${TEST_GUEST_BASE.packages.join(',')}`,
      `--cache-dir=${opts.debCacheDir}`,
      TEST_GUEST_BASE.suite,
      root,
      opts.mirror,
    ]);
    await writeTreeFile(root, 'etc/dpkg/dpkg.cfg.d/zz-vmigrate-build', 'force-unsafe-io\n');
    await writeTreeFile(root, 'etc/initramfs-tools/conf.d/vmware-guest.conf', INITRAMFS_CONF);
    try {
      await run('chroot', [root, '/debootstrap/debootstrap', '--second-stage'], { DEBIAN_FRONTEND: 'noninteractive' });
    } finally {
      await unmountBelow(root);
    }
    await rm(path.join(root, 'etc/dpkg/dpkg.cfg.d/zz-vmigrate-build'), { force: true });
    for (const p of TEST_GUEST_BASE.removedPaths) await rm(path.join(root, p), { recursive: true, force: true });
    for (const d of ['var/lib/apt/lists/partial', 'var/cache/apt/archives/partial']) await mkdir(path.join(root, d), { recursive: true });
    const partial = `${tarFile}.partial`;
    await run('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', partial, '.']);
    await rename(partial, tarFile);
    return tarFile;
  } finally {
    await unmountBelow(root).catch(() => undefined);
    // --one-file-system: never follow a mount that survived into the tree (a /proc left by a killed build).
    await runLogged('rm', ['-rf', '--one-file-system', work], opts.log).catch(() => undefined);
  }
}

/** Like a guest installed on VMware with MODULES=list: only the drivers in /etc/initramfs-tools/modules. */
export const INITRAMFS_CONF = '# Only the drivers listed in ../modules, like a guest installed on VMware\nMODULES=list\nCOMPRESS=gzip\n';

export async function writeTreeFile(root: string, rel: string, content: string): Promise<void> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

/** debootstrap's second stage mounts /proc and /sys in the chroot; a failed one may leave them behind. */
export async function unmountBelow(root: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(root + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await runLogged('umount', ['-l', m], undefined);
}
