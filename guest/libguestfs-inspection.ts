/**
 * What guest is on a VM's disks, for the Inspect stage and for deciding whether to convert it: the OS (family,
 * distribution, version, product name) from libguestfs inspection (`virt-inspector`, one appliance over all disks,
 * so an OS spread over several disks is seen whole); partition tables, file systems, encryption and firmware from our
 * own layout reader (guest/disk-layout.ts), which needs no appliance — so a blank or fully encrypted disk set is
 * reported without launching one.
 */
import { XMLParser } from 'fast-xml-parser';
import type { DiskLayout, PartitionInfo } from './disk-layout';
import { libguestfsEnv } from './libguestfs-env';
import { isBiosBootPartition, isEfiSystemPartition } from './partition-type-names';
import { spawnTool } from './tool-process';

export interface GuestFilesystem {
  /** As libguestfs names it: /dev/sda1 (disk index → letter, partition number). */
  device: string;
  type: string;
  label?: string;
  uuid?: string;
  /** Where the guest mounts it, when inspection found the OS's fstab. */
  mountpoint?: string;
  encrypted?: boolean;
}

export interface GuestInspection {
  /** libguestfs's inspect-get-type: linux, windows, freebsd, …; 'unknown' when no OS was found. */
  osFamily: string;
  /** inspect-get-distro: debian, ubuntu, rhel, windows, … */
  distro?: string;
  /** major.minor */
  version?: string;
  product?: string;
  arch?: string;
  hostname?: string;
  /** libosinfo short id (debian12, win2k19, …). */
  osinfo?: string;
  /** The root file system's device. */
  root?: string;
  /** From the disks: an EFI system partition means the guest boots with UEFI. */
  firmware: 'bios' | 'efi';
  /** The boot (first) disk's partition table; per disk in `disks`. */
  partitionTable: DiskLayout['partitionTable'];
  disks: Array<{ index: number; partitionTable: DiskLayout['partitionTable'] }>;
  filesystems: GuestFilesystem[];
  encrypted: boolean;
  /** VMware's guest tools (open-vm-tools, vmware-tools, VMware Tools) are installed. */
  vmwareTools?: boolean;
  /** A single OS virt-v2v can convert was found, and nothing stops it (see warnings). */
  convertible: boolean;
  /** Why it is not convertible, or what looks odd; each names the reason. */
  warnings: string[];
  /** How long the libguestfs appliance took (0 when none was needed). */
  applianceMs: number;
}

export interface InspectDisksInput {
  /** libguestfs drive per disk, boot disk first: a file or a URI such as nbd://?socket=/path (libguestfs's form of an NBD Unix socket). */
  drives: Array<{ uri: string; format: 'raw' | 'qcow2' }>;
  /** The same disks' layouts (inspectDiskLayout), in the same order. */
  layouts: DiskLayout[];
  signal?: AbortSignal;
  /** Called every few seconds while the appliance runs. */
  onTick?: () => void;
}

/** OS families virt-v2v 2.2 has converters for. */
const CONVERTIBLE_FAMILIES = new Set(['linux', 'windows']);
const VMWARE_TOOLS = /^(open-vm-tools|vmware-tools|VMwareTools|VMware Tools)/i;

export async function inspectGuestDisks(input: InspectDisksInput): Promise<GuestInspection> {
  const warnings: string[] = [];
  const filesystems = filesystemsFromLayouts(input.layouts);
  const encryptedFs = filesystems.filter((f) => f.encrypted);
  const partitionTable = input.layouts[0]?.partitionTable ?? 'none';
  // As virt-v2v decides it: an EFI system partition means UEFI, unless a BIOS boot partition says the disk is
  // (also) booted by BIOS through GRUB's embedded core image.
  const boot = input.layouts[0]?.partitions ?? [];
  const firmware = boot.some(isEfiSystemPartition) && !boot.some(isBiosBootPartition) ? 'efi' : 'bios';
  const base = {
    firmware,
    partitionTable,
    disks: input.layouts.map((l, index) => ({ index, partitionTable: l.partitionTable })),
    filesystems,
    encrypted: encryptedFs.length > 0,
  } as const;
  if (encryptedFs.length) {
    warnings.push(
      `encrypted volume(s) ${encryptedFs.map((f) => `${f.device} (${f.type})`).join(', ')}: their contents cannot be inspected or converted without a key; they are copied as-is`,
    );
  }
  // Nothing a libguestfs appliance could find an OS in: do not spend a minute launching one.
  const inspectable = filesystems.some((f) => !f.encrypted && f.type !== 'swap') || input.layouts.some((l) => l.partitions.some((p) => !p.filesystem && !p.encrypted));
  if (!inspectable) {
    warnings.push(encryptedFs.length ? 'no unencrypted file system to look for an operating system in' : 'no file system found on the disks: there is no operating system to convert');
    return { ...base, osFamily: 'unknown', convertible: false, warnings, applianceMs: 0 };
  }

  const started = Date.now();
  const xml = await runVirtInspector(input);
  const applianceMs = Date.now() - started;
  const oses = parseInspectorXml(xml);
  if (oses.length === 0) {
    warnings.push('libguestfs inspection found no operating system on the disks (a data-only disk set, or an OS it does not recognise)');
    return { ...base, osFamily: 'unknown', convertible: false, warnings, applianceMs };
  }
  const os = oses[0];
  if (oses.length > 1) warnings.push(`multi-boot guest: operating systems on ${oses.map((o) => o.root).join(', ')}; conversion would use the first`);
  for (const fs of filesystems) {
    const known = oses.flatMap((o) => o.filesystems).find((f) => f.device === fs.device);
    fs.label ??= known?.label;
    fs.uuid ??= known?.uuid;
    const mp = os.mountpoints.find((m) => m.device === fs.device);
    if (mp) fs.mountpoint = mp.path;
  }
  // File systems inside containers our layout reader does not open (LVM logical volumes, md RAID): as libguestfs saw them.
  for (const known of os.filesystems) {
    if (filesystems.some((f) => f.device === known.device) || !known.type || known.type === 'unknown' || known.type === 'swap') continue;
    const mp = os.mountpoints.find((m) => m.device === known.device);
    filesystems.push({ device: known.device, type: known.type, label: known.label, uuid: known.uuid, ...(mp ? { mountpoint: mp.path } : {}) });
  }
  if (!CONVERTIBLE_FAMILIES.has(os.name)) warnings.push(`virt-v2v cannot convert ${os.name}${os.distro ? `/${os.distro}` : ''} guests`);
  const convertible = CONVERTIBLE_FAMILIES.has(os.name) && oses.length === 1;
  return {
    ...base,
    osFamily: os.name,
    distro: os.distro,
    version: os.major !== undefined ? `${os.major}.${os.minor ?? 0}` : undefined,
    product: os.product,
    arch: os.arch,
    hostname: os.hostname,
    osinfo: os.osinfo,
    root: os.root,
    vmwareTools: os.applications.some((a) => VMWARE_TOOLS.test(a)),
    convertible,
    warnings,
    applianceMs,
  };
}

/** /dev/sdX[N] as libguestfs names the disks it was given, in order. */
export function libguestfsDevice(diskIndex: number, partition?: number): string {
  let letters = '';
  for (let n = diskIndex + 1; n > 0; n = Math.floor((n - 1) / 26)) letters = String.fromCharCode(97 + ((n - 1) % 26)) + letters;
  return `/dev/sd${letters}${partition ?? ''}`;
}

function filesystemsFromLayouts(layouts: DiskLayout[]): GuestFilesystem[] {
  const out: GuestFilesystem[] = [];
  layouts.forEach((layout, i) => {
    if (layout.filesystem) {
      out.push({ device: libguestfsDevice(i), type: layout.filesystem.type, label: layout.filesystem.label, uuid: layout.filesystem.uuid, ...(layout.encrypted ? { encrypted: true } : {}) });
    }
    for (const p of layout.partitions) {
      if (!p.filesystem) continue;
      out.push({ device: libguestfsDevice(i, p.number), type: p.filesystem.type, label: p.filesystem.label, uuid: p.filesystem.uuid, ...(p.encrypted ? { encrypted: true } : {}) });
    }
  });
  return out;
}


function runVirtInspector(input: InspectDisksInput): Promise<string> {
  // --keys-from-stdin with an empty stdin: an encrypted volume is skipped instead of prompting on a terminal.
  const args = ['--no-icon', '--keys-from-stdin'];
  for (const d of input.drives) args.push(`--format=${d.format}`, '-a', d.uri);
  return new Promise((resolve, reject) => {
    const tool = spawnTool('virt-inspector', args, { env: libguestfsEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const child = tool.child;
    child.stdin!.end();
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-8000)));
    const tick = input.onTick ? setInterval(input.onTick, 5000) : undefined;
    const abort = () => tool.kill('SIGKILL');
    input.signal?.addEventListener('abort', abort, { once: true });
    const done = () => {
      if (tick) clearInterval(tick);
      input.signal?.removeEventListener('abort', abort);
    };
    tool.ended.then(
      ({ code, signal }) => {
        done();
        if (input.signal?.aborted) return reject(new Error('guest inspection was cancelled'));
        if (code === 0) return resolve(out);
        // Answers, not failures: nothing found, or an OS only behind encryption (no key given; the layout reader has
        // already named the encrypted volumes).
        if (/no operating system|could not read key from user/i.test(err)) return resolve('<operatingsystems/>');
        reject(new Error(`virt-inspector failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(-5).join(' | ')}`));
      },
      (e: Error) => {
        done();
        reject(new Error(`cannot run virt-inspector: ${e.message} (install libguestfs-tools: npm run setup)`));
      },
    );
  });
}

interface InspectedOs {
  root: string;
  name: string;
  distro?: string;
  arch?: string;
  product?: string;
  major?: number;
  minor?: number;
  hostname?: string;
  osinfo?: string;
  mountpoints: Array<{ device: string; path: string }>;
  filesystems: Array<{ device: string; type?: string; label?: string; uuid?: string }>;
  applications: string[];
}

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) => ['operatingsystem', 'mountpoint', 'filesystem', 'application'].includes(name),
});

/** virt-inspector's XML (virt-inspector.rng) → the fields we use. */
export function parseInspectorXml(xml: string): InspectedOs[] {
  const doc = xmlParser.parse(xml) as { operatingsystems?: { operatingsystem?: Array<Record<string, any>> } | '' };
  const list = (doc.operatingsystems && doc.operatingsystems.operatingsystem) || [];
  return list.map((os) => ({
    root: String(os.root ?? ''),
    name: String(os.name ?? 'unknown'),
    distro: str(os.distro),
    arch: str(os.arch),
    product: str(os.product_name),
    major: num(os.major_version),
    minor: num(os.minor_version),
    hostname: str(os.hostname),
    osinfo: str(os.osinfo),
    mountpoints: (os.mountpoints?.mountpoint ?? []).map((m: Record<string, any>) => ({ device: String(m['@dev']), path: String(m['#text'] ?? '') })),
    filesystems: (os.filesystems?.filesystem ?? []).map((f: Record<string, any>) => ({ device: String(f['@dev']), type: str(f.type), label: str(f.label), uuid: str(f.uuid) })),
    applications: (os.applications?.application ?? []).map((a: Record<string, any>) => String(a.name ?? '')),
  }));
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

function num(v: unknown): number | undefined {
  const n = Number(v);
  return v === undefined || v === '' || !Number.isFinite(n) ? undefined : n;
}
