import { spawn } from 'node:child_process';
import type { WriteStream } from 'node:fs';

/**
 * Runs a build command, its output into the build log; rejects with the command and its output's tail. The image
 * builders run dozens of such commands (debootstrap, chroot, mkfs, sfdisk, mtools) and the log is where a failed
 * build is read.
 */
export function runLogged(
  cmd: string,
  args: string[],
  log: WriteStream | undefined,
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    log?.write(`$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    let tail = '';
    let stdout = '';
    child.stdout!.on('data', (b: Buffer) => {
      log?.write(b);
      stdout += b.toString();
      tail = (tail + b.toString()).slice(-4000);
    });
    child.stderr!.on('data', (b: Buffer) => {
      log?.write(b);
      tail = (tail + b.toString()).slice(-4000);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (run npm run setup)' : ''}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… failed (${signal ?? `exit ${code}`}):\n${tail}`));
    });
  });
}
