/**
 * Runs virt-v2v-in-place (virt-v2v 2.x) on disks that are already copied: it removes the VMware tools, installs
 * VirtIO drivers (Linux: rebuilds the initramfs with them; Windows: from the virtio-win ISO), fixes the boot loader
 * and device names. The disks are modified in place — callers hand it throw-away copies (qcow2 overlays), never the
 * copied volumes themselves.
 *
 * The guest is described with `-i libvirtxml` (one <disk> per volume, boot disk first, with its real format), so
 * multi-disk guests and qcow2 overlays work; `-i disk` takes one raw-or-guessed disk only.
 * Progress comes from `--machine-readable=fd:3`: one JSON object per line, {message, timestamp, type}.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { classifyConversionFailure, type GuestConversionError } from './conversion-errors';
import { libguestfsEnv } from './libguestfs-env';
import { spawnTool } from './tool-process';
import { parseConverterLine, type ConverterEvent } from './virt-v2v-output';

export interface ConversionDisk {
  /** A local file (or block device) holding the disk. */
  path: string;
  format: 'raw' | 'qcow2';
}

export interface ConversionRequest {
  /** Boot disk first. */
  disks: ConversionDisk[];
  guestName: string;
  memoryMB?: number;
  vcpus?: number;
  /** How the source booted: virt-v2v needs it to handle the EFI system partition. */
  firmware: 'bios' | 'efi';
  /** The source's NICs, so virt-v2v can keep MAC-based names. */
  nics?: Array<{ mac: string }>;
  /** Windows only: the virtio-win ISO (or directory) drivers are installed from (virt-v2v's VIRTIO_WIN). */
  virtioWinIso?: string;
  /** For the XML and the full log. */
  workDir: string;
  signal?: AbortSignal;
  /** Every JSON message, and a tick every `tickMs` while it runs (conversions take minutes without output). */
  onProgress?: (p: ConversionProgress) => void;
  tickMs?: number;
  /** Called with the converter's process id once started (lets tests kill it partway; see tool-process.ts). */
  onSpawn?: (pid: number) => void;
}

export interface ConversionProgress {
  /** The last status message ("Inspecting the source", "Converting Debian GNU/Linux 12 (bookworm) to run on KVM"). */
  stage: string;
  elapsedMs: number;
  /** Status messages seen so far (the heartbeat changes when this does). */
  messages: number;
}

export interface ConversionResult {
  durationMs: number;
  /** Status messages with the time they came, in seconds since start: what conversion did, in order. */
  stages: Array<{ atSeconds: number; message: string }>;
  warnings: string[];
  infos: string[];
  /** Full output (stdout, stderr, -v debug if enabled) in the work dir. */
  logFile: string;
}

/** What `virt-v2v-in-place --version` must say; the error texts in conversion-errors.ts are from this line. */
export const CONVERTER = 'virt-v2v-in-place';

export async function runVirtV2vInPlace(req: ConversionRequest): Promise<ConversionResult> {
  if (req.disks.length === 0) throw new Error('virt-v2v-in-place: no disks to convert');
  await mkdir(req.workDir, { recursive: true });
  const xmlFile = path.join(req.workDir, 'source-guest.xml');
  await writeFile(xmlFile, sourceDomainXml(req));
  const logFile = path.join(req.workDir, 'virt-v2v-in-place.log');
  const args = ['-i', 'libvirtxml', xmlFile, '--machine-readable=fd:3', '--root', 'first', '--keys-from-stdin'];
  const env: NodeJS.ProcessEnv = { ...libguestfsEnv(), LANG: 'C.UTF-8' };
  if (req.virtioWinIso) env.VIRTIO_WIN = req.virtioWinIso;
  const started = Date.now();
  const stages: ConversionResult['stages'] = [];
  const warnings: string[] = [];
  const infos: string[] = [];
  const errors: string[] = [];
  let log = '';
  const progress = () => req.onProgress?.({ stage: stages[stages.length - 1]?.message ?? 'starting', elapsedMs: Date.now() - started, messages: stages.length });

  const onEvent = (e: ConverterEvent) => {
    const atSeconds = Math.round((Date.now() - started) / 100) / 10;
    if (e.kind === 'message') {
      stages.push({ atSeconds, message: e.text });
      progress();
    } else if (e.kind === 'warning') warnings.push(e.text);
    else if (e.kind === 'info') infos.push(e.text);
    else if (e.kind === 'error') errors.push(e.text);
  };

  // If the worker dies, virt-v2v and its helpers die with it instead of converting on, unseen, into a copy nobody
  // will use; if virt-v2v dies, its helpers (qemu-nbd, the appliance) go too (tool-process.ts).
  const command = CONVERTER;
  const tool = spawnTool(command, args, { env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  const child = tool.child;
  // --keys-from-stdin with an empty stdin: an encrypted disk fails fast ("could not read key") instead of prompting.
  child.stdin!.end();
  if (child.pid) req.onSpawn?.(child.pid);
  const keep = (chunk: Buffer) => {
    log += chunk.toString();
    if (log.length > 4 * 1024 * 1024) log = log.slice(-2 * 1024 * 1024);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // Fatal errors come as JSON {type: "error"}; a few come only on stderr as "virt-v2v-in-place: <text>" (the LUKS key
  // prompt's "could not read key from user"): those count too, unless they are warnings or repeat a JSON error.
  const stderrErrors: string[] = [];
  lines(child.stderr!, (line) => {
    const m = /^virt-v2v(?:-in-place)?: (?!warning:)(?:error: )?(.*)$/.exec(line);
    if (m) stderrErrors.push(m[1]);
  });
  lines(child.stdio[3] as NodeJS.ReadableStream, (line) => {
    const e = parseConverterLine(line);
    if (e) onEvent(e);
  });

  const tick = setInterval(progress, req.tickMs ?? 5000);
  let aborted = false;
  const abort = () => {
    aborted = true;
    tool.kill('SIGTERM');
    setTimeout(() => tool.kill('SIGKILL'), 10_000).unref();
  };
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    const end = await tool.ended.catch((err: Error) => {
      throw new Error(`cannot run ${command}: ${err.message} (install virt-v2v: npm run setup)`);
    });
    await writeFile(logFile, log);
    if (end.code === 0 && !aborted) return { durationMs: Date.now() - started, stages, warnings, infos, logFile };
    // The exit code and signal are the converter's own (setpriv execs; unshare passes its child's status on).
    const failure: GuestConversionError = classifyConversionFailure({
      errorMessages: errors.length ? errors : stderrErrors,
      exitCode: end.code,
      signal: end.signal,
      outputTail: log.slice(-6000),
      aborted,
    });
    throw failure;
  } finally {
    clearInterval(tick);
    req.signal?.removeEventListener('abort', abort);
  }
}

/** The source guest as libvirt XML for `-i libvirtxml`: its disks (our copies) with their real formats. */
export function sourceDomainXml(req: Pick<ConversionRequest, 'disks' | 'guestName' | 'memoryMB' | 'vcpus' | 'firmware' | 'nics'>): string {
  const lines = [
    `<domain type='kvm'>`,
    `  <name>${esc(req.guestName)}</name>`,
    `  <memory unit='MiB'>${req.memoryMB ?? 1024}</memory>`,
    `  <vcpu>${req.vcpus ?? 1}</vcpu>`,
    req.firmware === 'efi' ? `  <os firmware='efi'>` : `  <os>`,
    `    <type arch='x86_64'>hvm</type>`,
    `    <boot dev='hd'/>`,
    `  </os>`,
    `  <features><acpi/><apic/></features>`,
    `  <devices>`,
    // The bus is the source's (VMware: SCSI); virt-v2v chooses the target bus from the drivers the guest has.
    ...req.disks.flatMap((d, i) => [
      `    <disk type='file' device='disk'>`,
      `      <driver name='qemu' type='${d.format}'/>`,
      `      <source file='${esc(d.path)}'/>`,
      `      <target dev='sd${String.fromCharCode(97 + i)}' bus='scsi'/>`,
      `    </disk>`,
    ]),
    ...(req.nics ?? []).flatMap((n) => [
      `    <interface type='network'>`,
      `      <mac address='${esc(n.mac.toLowerCase())}'/>`,
      `      <source network='default'/>`,
      `      <model type='vmxnet3'/>`,
      `    </interface>`,
    ]),
    `  </devices>`,
    `</domain>`,
  ];
  return lines.join('\n') + '\n';
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let partial = '';
  stream.on('data', (chunk: Buffer | string) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) onLine(p.trimEnd());
  });
  stream.on('end', () => {
    if (partial.trim()) onLine(partial.trimEnd());
  });
}

function esc(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
