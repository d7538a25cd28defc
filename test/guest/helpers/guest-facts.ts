import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { libguestfsEnv } from '../../../guest/libguestfs-env';

/** What a test wants to know about a Debian guest's disk, read with libguestfs (read-only). */
export interface GuestFacts {
  vmtoolsdInstalled: boolean;
  /** open-vm-tools has a stanza in dpkg's status file (installed, or removed but not purged). */
  openVmToolsInDpkg: boolean;
  /** Kernel module file names in /boot/initrd.img-* (lsinitramfs). */
  initramfsModules: string[];
}

/**
 * One guestfish appliance for several disks at once (each a single-partition Debian guest), each mounted read-only
 * under its own mount point; /boot is copied out and the initramfs listed on the host.
 */
export async function readGuestFacts(disks: Array<{ path: string; format: 'raw' | 'qcow2' }>, workDir: string): Promise<GuestFacts[]> {
  const script: string[] = [];
  disks.forEach((d) => script.push(`add ${d.path} readonly:true format:${d.format}`));
  script.push('run');
  disks.forEach((_, i) => {
    const dev = `/dev/sd${String.fromCharCode(97 + i)}1`;
    const out = path.join(workDir, `disk${i}`);
    mkdirSync(out, { recursive: true });
    script.push(
      `mkmountpoint /d${i}`,
      `mount-ro ${dev} /d${i}`,
      `echo @@${i} vmtoolsd`,
      `is-file /d${i}/usr/bin/vmtoolsd`,
      `echo @@${i} dpkg`,
      `grep "^Package: open-vm-tools$" /d${i}/var/lib/dpkg/status`,
      `copy-out /d${i}/boot ${out}`,
    );
  });
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('guestfish', [], { env: libguestfsEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`guestfish failed (exit ${code}): ${err.slice(-2000)}`))));
    child.stdin!.end(script.join('\n') + '\n');
  });
  return disks.map((_, i) => {
    const section = (name: string) => (output.split(`@@${i} ${name}\n`)[1] ?? '').split('@@')[0].trim();
    const bootDir = path.join(workDir, `disk${i}`, 'boot');
    const initrd = readdirSync(bootDir).find((f) => f.startsWith('initrd.img-'));
    if (!initrd) throw new Error(`no initrd.img-* in /boot of disk ${i}`);
    const listing = execFileSync('lsinitramfs', [path.join(bootDir, initrd)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return {
      vmtoolsdInstalled: section('vmtoolsd') === 'true',
      openVmToolsInDpkg: section('dpkg').includes('Package: open-vm-tools'),
      initramfsModules: listing
        .split('\n')
        .filter((l) => l.endsWith('.ko') || l.endsWith('.ko.xz') || l.endsWith('.ko.zst'))
        .map((l) => path.basename(l)),
    };
  });
}

/** Bytes a qcow2 file holds itself (not from its backing file): what has been written to it. */
export function qcow2OwnBytes(file: string): number {
  // -U: the converter may have it open for writing.
  const map = JSON.parse(execFileSync('qemu-img', ['map', '-U', '--output=json', '-f', 'qcow2', file], { encoding: 'utf8' })) as Array<{
    length: number;
    depth: number;
    data: boolean;
  }>;
  return map.filter((e) => e.depth === 0 && e.data).reduce((s, e) => s + e.length, 0);
}
