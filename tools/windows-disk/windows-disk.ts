import { execFileSync, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { emptyHive } from './empty-hive';

/**
 * A disk that looks like a Windows system disk to anything that reads it: an NTFS volume holding
 * Windows\System32\config\SOFTWARE and SYSTEM, registry hives written by hivex with the values Windows keeps its
 * product and computer name in. It does not boot; it is for discovery and copying. Partitioned, it has an MBR with
 * the NTFS volume first and a second partition of random data after it; whole, the NTFS volume is the image.
 */
export interface WindowsDiskSpec {
  productName: string;
  build: string;
  majorVersion: number;
  minorVersion: number;
  editionId: string;
  displayVersion?: string;
  installationType: 'Client' | 'Server';
  computerName: string;
  hostname: string;
  /** The control set Select\Current names; the others hold a stale name, as after a rename. */
  currentControlSet?: number;
  /** Keys beside Microsoft\Windows NT, as a real SOFTWARE hive has hundreds: long subkey lists to search. */
  siblingKeys?: number;
}

const MiB = 1024 * 1024;

function dword(n: number): string {
  return `dword:${n.toString(16).padStart(8, '0')}`;
}

function regFile(sections: Array<[string, Record<string, string>]>): string {
  const lines = ['Windows Registry Editor Version 5.00', ''];
  for (const [key, values] of sections) {
    lines.push(`[${key}]`);
    for (const [name, v] of Object.entries(values)) lines.push(`"${name}"=${v}`);
    lines.push('');
  }
  return lines.join('\r\n');
}

/** Keys must be listed parents first: hivexregedit creates one level per section. */
function withParents(key: string): string[] {
  const parts = key.split('\\').filter(Boolean);
  return parts.map((_, i) => '\\' + parts.slice(0, i + 1).join('\\'));
}

function sections(values: Record<string, Record<string, string>>): Array<[string, Record<string, string>]> {
  const out = new Map<string, Record<string, string>>();
  for (const key of Object.keys(values)) for (const k of withParents(key)) if (!out.has(k)) out.set(k, {});
  for (const [key, v] of Object.entries(values)) out.set(withParents(key).at(-1)!, v);
  return [...out];
}

async function writeHive(file: string, values: Record<string, Record<string, string>>, workDir: string): Promise<void> {
  await writeFile(file, emptyHive());
  const reg = path.join(workDir, `${path.basename(file)}.reg`);
  await writeFile(reg, regFile(sections(values)));
  execFileSync('hivexregedit', ['--merge', file, reg], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A REG_SZ as its UTF-16LE bytes (hex(1)): the .reg file is then ASCII, whatever encoding hivexregedit reads it in. */
const q = (s: string) => 'hex(1):' + [...Buffer.from(s + '\0', 'utf16le')].map((b) => b.toString(16).padStart(2, '0')).join(',');

export function registryOf(spec: WindowsDiskSpec): { software: Record<string, Record<string, string>>; system: Record<string, Record<string, string>> } {
  const current = spec.currentControlSet ?? 1;
  const system: Record<string, Record<string, string>> = { '\\Select': { Current: dword(current), Default: dword(current), LastKnownGood: dword(current) } };
  for (const set of new Set([1, current])) {
    const name = set === current ? spec.computerName : 'STALE-NAME';
    const cs = `\\ControlSet${String(set).padStart(3, '0')}`;
    system[`${cs}\\Control\\ComputerName\\ComputerName`] = { ComputerName: q(name) };
    system[`${cs}\\Services\\Tcpip\\Parameters`] = { Hostname: q(set === current ? spec.hostname : 'stale-name') };
  }
  const siblings: Record<string, Record<string, string>> = {};
  for (let i = 0; i < (spec.siblingKeys ?? 0); i++) siblings[`\\Microsoft\\Vendor Product ${String(i).padStart(4, '0')}`] = { Version: q(`${i}.0`) };
  return {
    software: {
      ...siblings,
      '\\Microsoft\\Windows NT\\CurrentVersion': {
        ProductName: q(spec.productName),
        EditionID: q(spec.editionId),
        InstallationType: q(spec.installationType),
        CurrentVersion: q('6.3'),
        CurrentBuild: q(spec.build),
        CurrentBuildNumber: q(spec.build),
        CurrentMajorVersionNumber: dword(spec.majorVersion),
        CurrentMinorVersionNumber: dword(spec.minorVersion),
        ...(spec.displayVersion ? { DisplayVersion: q(spec.displayVersion) } : {}),
      },
    },
    system,
  };
}

/** ntfs-3g in the foreground (so its exit says every write reached the file), mounted while `fill` runs. */
async function withNtfsMounted(volume: string, fill: (root: string) => Promise<void>, workDir: string): Promise<void> {
  const mnt = path.join(workDir, 'mnt');
  await mkdir(mnt, { recursive: true });
  const proc = spawn('ntfs-3g', ['-o', 'no_detach', volume, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  const deadline = Date.now() + 30_000;
  while (!readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`ntfs-3g did not mount ${volume}: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    await fill(mnt);
  } finally {
    execFileSync('umount', [mnt]);
    await exited;
  }
}

export async function makeWindowsDisk(file: string, sizeBytes: number, spec: WindowsDiskSpec, opts: { partitioned: boolean }): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-windows-disk-'));
  try {
    const { software, system } = registryOf(spec);
    await writeHive(path.join(work, 'SOFTWARE'), software, work);
    await writeHive(path.join(work, 'SYSTEM'), system, work);
    const ntfsBytes = opts.partitioned ? Math.floor(sizeBytes / 4 / MiB) * MiB : sizeBytes;
    const volume = opts.partitioned ? path.join(work, 'ntfs.img') : file;
    const fh = await open(volume, 'w');
    await fh.truncate(ntfsBytes);
    await fh.close();
    execFileSync('mkntfs', ['-q', '-F', '-Q', '-L', 'Windows', ...(opts.partitioned ? ['-p', '2048'] : []), volume], { stdio: 'ignore' });
    await withNtfsMounted(volume, async (root) => {
      const config = path.join(root, 'Windows', 'System32', 'config');
      await mkdir(config, { recursive: true });
      await copyFile(path.join(work, 'SOFTWARE'), path.join(config, 'SOFTWARE'));
      await copyFile(path.join(work, 'SYSTEM'), path.join(config, 'SYSTEM'));
      await writeFile(path.join(root, 'Windows', 'System32', 'ntoskrnl.exe'), 'not a kernel');
    }, work);
    if (!opts.partitioned) return;
    const disk = await open(file, 'w');
    try {
      await disk.truncate(sizeBytes);
      const ntfs = await open(volume, 'r');
      const buf = Buffer.alloc(4 * MiB);
      for (let at = 0; at < ntfsBytes; at += buf.length) {
        const { bytesRead } = await ntfs.read(buf, 0, buf.length, at);
        await disk.write(buf, 0, bytesRead, MiB + at);
      }
      await ntfs.close();
      // The second partition: random data, so a copy of it is checked byte for byte.
      const dataStart = MiB + ntfsBytes;
      for (let at = dataStart; at + buf.length <= sizeBytes; at += buf.length) {
        randomFillSync(buf);
        await disk.write(buf, 0, buf.length, at);
      }
    } finally {
      await disk.close();
    }
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', file], {
      input: `label: dos\nstart=2048, size=${ntfsBytes / 512}, type=7, bootable\nstart=${2048 + ntfsBytes / 512}, type=83\n`,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
