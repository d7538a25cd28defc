/**
 * The lab's stand-in NFS share, exported as 127.0.0.1:<exportDir>. Cinder's NFS driver and Nova's NFS volume
 * connector are the real ones; only the transport is not NFS (this machine has no NFS server or client): the
 * /sbin/mount.nfs that scripts/setup-openstack.sh installs bind-mounts the export directory.
 *
 * The export is an ext4 image on a loop device, a file system of its own (Nova checks its mount point with
 * os.path.ismount, which a bind mount of a directory of the same file system fails), wrapped by
 * `bindfs -o subtype=glusterfs`: libvirt then takes the volumes' files for shared storage, as on a real NFS share.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { capture, run, sleep } from './proc';

export interface Share {
  /** Where volume-<id> files appear: the exported directory. */
  exportDir: string;
  /** What nfs_shares_config lists and connection_info's `export` carries. */
  nfsExport: string;
  loopDevice: string;
}

export function isMounted(dir: string): boolean {
  return mountsUnder(dir).includes(dir);
}

/** Mount points at or under `dir`, in the order they were mounted (unmount in reverse). */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === dir || decoded.startsWith(dir + '/')) out.push(decoded);
  }
  return out;
}

export async function createShare(dir: string, sizeGiB: number, logFile: string): Promise<Share> {
  const image = path.join(dir, 'share.img');
  const fsDir = path.join(dir, 'fs');
  const exportDir = path.join(dir, 'export');
  mkdirSync(fsDir, { recursive: true });
  mkdirSync(exportDir, { recursive: true });
  await run('truncate', ['-s', `${sizeGiB}G`, image], logFile);
  // One inode per MiB: volumes are few large files, and small inode tables keep mkfs instant and the image sparse.
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-T', 'largefile', '-E', 'lazy_itable_init=0,lazy_journal_init=0,nodiscard', image], logFile);
  const loopDevice = (await capture('losetup', ['--find', '--show', image])).trim();
  try {
    await run('mount', [loopDevice, fsDir], logFile);
    await run('bindfs', ['-o', 'subtype=glusterfs,allow_other', fsDir, exportDir], logFile);
    for (let i = 0; i < 100 && !isMounted(exportDir); i++) await sleep(50);
    if (!isMounted(exportDir)) throw new Error(`bindfs did not mount ${exportDir}`);
  } catch (err) {
    await unmountAll(dir);
    await capture('losetup', ['-d', loopDevice]).catch(() => undefined);
    throw err;
  }
  return { exportDir, nfsExport: `127.0.0.1:${exportDir}`, loopDevice };
}

/** Unmounts everything at or under `dir`, innermost first; lazily if a mount stays busy. */
export async function unmountAll(dir: string): Promise<void> {
  for (let pass = 0; pass < 3; pass++) {
    const mounts = mountsUnder(dir).reverse();
    if (!mounts.length) return;
    for (const m of mounts) await capture('umount', [m]).catch(() => capture('umount', ['-l', m]).catch(() => undefined));
  }
}
