import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { KeyedMutex } from '../keyed-mutex';

const run = promisify(execFile);

/**
 * NFS shares mounted on this worker, as os-brick's NFS connector does it: one mount point per export (named by a
 * hash of it, so every worker process on the host agrees), shared by every volume on that share, unmounted when the
 * last user in this process is done. A mount left by a process that died is found in the mount table, reused, and
 * unmounted when its new user is done.
 */
export class NfsShareMounts {
  private readonly users = new Map<string, number>();
  private readonly locks = new KeyedMutex();

  constructor(private readonly mountBase: string) {}

  mountPointFor(exportPath: string): string {
    return path.join(this.mountBase, createHash('sha256').update(exportPath).digest('hex').slice(0, 32));
  }

  /** Mount (or reuse) the export; returns the mount point. Pair with release(). */
  async acquire(exportPath: string, options?: string): Promise<string> {
    const mountPoint = this.mountPointFor(exportPath);
    return this.locks.run(mountPoint, async () => {
      if (!(await isMountPoint(mountPoint))) {
        await mkdir(mountPoint, { recursive: true });
        const args = ['-t', 'nfs', ...(options ? ['-o', options] : []), exportPath, mountPoint];
        try {
          await run('mount', args, { timeout: 120_000 });
        } catch (err) {
          const e = err as { stderr?: string; message: string };
          throw new Error(`cannot mount the volume's NFS share ${exportPath} on ${mountPoint}: ${(e.stderr || e.message).trim()}`);
        }
      }
      this.users.set(mountPoint, (this.users.get(mountPoint) ?? 0) + 1);
      return mountPoint;
    });
  }

  async release(exportPath: string): Promise<void> {
    const mountPoint = this.mountPointFor(exportPath);
    await this.locks.run(mountPoint, async () => {
      const n = (this.users.get(mountPoint) ?? 1) - 1;
      if (n > 0) {
        this.users.set(mountPoint, n);
        return;
      }
      this.users.delete(mountPoint);
      // Two worker processes that mounted at the same moment stack two mounts here; unmount until none is left. One
      // that another process still uses makes umount say busy: it stays for that process, whose release removes it.
      while (await isMountPoint(mountPoint)) {
        const ok = await run('umount', [mountPoint], { timeout: 60_000 }).then(() => true, () => false);
        if (!ok) break;
      }
    });
  }
}

async function isMountPoint(dir: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const resolved = path.resolve(dir);
  // Field 5 is the mount point, with spaces and other specials octal-escaped.
  return table.split('\n').some((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_m, o) => String.fromCharCode(parseInt(o, 8))) === resolved);
}
