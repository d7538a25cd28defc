/**
 * Boot check: start the migrated instance's disks in qemu the way the target would run them (its disk bus, machine
 * type, firmware and NIC model; VirtIO by default) and watch the serial console for the guest's login prompt.
 * Every drive is opened with snapshot=on, so the check never writes to the instance's volumes (first-boot scripts,
 * fsck and journals land in a throw-away overlay). The guest's network is qemu's restricted user network: it boots
 * with a NIC but reaches nothing.
 *
 * Linux guests print their login prompt on ttyS0 when the kernel has console=ttyS0 (as clouds expect); a guest
 * without a serial console (Windows) cannot pass this check.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { guestAccel, type GuestAccel } from './libguestfs-env';
import { spawnTool } from './tool-process';
import { selectUefiFirmware } from './uefi-firmware';

export interface BootCheckDisk {
  path: string;
  format: 'raw' | 'qcow2';
}

export interface BootCheckRequest {
  /** Boot disk first. */
  disks: BootCheckDisk[];
  diskBus: 'virtio' | 'scsi' | 'sata' | 'ide';
  machineType: 'pc-i440fx' | 'pc-q35';
  firmware: 'bios' | 'efi';
  /** UEFI with Secure Boot on (the Microsoft keys enrolled, as shim expects); needs pc-q35. */
  secureBoot?: boolean;
  memoryMB: number;
  vcpus: number;
  nicModel: 'virtio' | 'e1000';
  timeoutMs: number;
  /** What counts as booted; default: a getty's "<hostname> login:" prompt. */
  loginPattern?: RegExp;
  signal?: AbortSignal;
  onTick?: (elapsedMs: number) => void;
  /** Bytes of console kept for the result. */
  consoleTailBytes?: number;
}

export interface BootCheckResult {
  passed: boolean;
  durationMs: number;
  /** The end of the serial console (ANSI escapes removed), always kept: on failure it says where the boot stopped. */
  consoleTail: string;
  /** Why it failed (timeout, a boot failure seen on the console, qemu exiting). */
  reason?: string;
  /** How the worker's qemu ran the guest; absent when the target cloud booted it. */
  accel?: GuestAccel;
}

const LOGIN = /\blogin: /;
/** Console lines that mean the boot has failed for good: stop early instead of waiting out the timeout. */
const FATAL = [
  /Kernel panic - not syncing[^\n]*/,
  /Gave up waiting for root (file system )?device[^\n]*/,
  /No bootable device[^\n]*/,
  // OVMF with nothing it may boot: no boot entry in the (fresh) variable store and no EFI/BOOT/BOOTX64.EFI, or a
  // loader Secure Boot refused. Without Secure Boot it falls through to its shell instead.
  /BdsDxe: No bootable option or device was found[^\n]*/,
  /UEFI Interactive Shell v[^\n]*/,
  /\(initramfs\) /,
  /You are in emergency mode[^\n]*/,
];
/**
 * What a console says so far: booted (the login prompt), failed for good (a fatal line), or nothing yet. Shared by
 * the worker's qemu boot check and a cloud's console (Nova's os-getConsoleOutput).
 */
export function consoleVerdict(consoleText: string, loginPattern: RegExp = LOGIN): { passed: boolean; reason?: string } | undefined {
  if (loginPattern.test(consoleText)) return { passed: true };
  for (const f of FATAL) {
    const m = f.exec(consoleText);
    if (m) return { passed: false, reason: `the guest did not boot: "${m[0].trim()}" on the console` };
  }
  return undefined;
}

const MACHINE: Record<BootCheckRequest['machineType'], string> = { 'pc-i440fx': 'pc', 'pc-q35': 'q35' };

export async function runBootCheck(req: BootCheckRequest): Promise<BootCheckResult> {
  if (req.disks.length === 0) throw new Error('boot check: no disks');
  const accel = guestAccel();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-bootcheck-'));
  const started = Date.now();
  try {
    const args = await qemuArgs(req, accel, scratch);
    // The VM never outlives the worker that started it (tool-process.ts).
    const tool = spawnTool('qemu-system-x86_64', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // qemu puts the snapshot=on overlays in TMPDIR: keep them in our scratch directory.
      env: { ...process.env, TMPDIR: scratch },
    });
    const child = tool.child;
    const tailBytes = req.consoleTailBytes ?? 4000;
    let consoleText = '';
    let stderr = '';
    let verdict: { passed: boolean; reason?: string } | undefined;
    const decide = (v: { passed: boolean; reason?: string }) => {
      if (verdict) return;
      verdict = v;
      tool.kill('SIGKILL');
    };
    child.stdout!.on('data', (b: Buffer) => {
      consoleText = (consoleText + stripAnsi(b.toString('latin1'))).slice(-64 * 1024);
      const seen = consoleVerdict(consoleText, req.loginPattern);
      if (seen) decide(seen);
    });
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const timer = setTimeout(() => decide({ passed: false, reason: `no login prompt on the serial console within ${Math.round(req.timeoutMs / 1000)} s` }), req.timeoutMs);
    const tick = setInterval(() => req.onTick?.(Date.now() - started), 5000);
    const abort = () => decide({ passed: false, reason: 'boot check cancelled' });
    req.signal?.addEventListener('abort', abort, { once: true });
    const exit = await tool.ended
      .catch((err: Error) => {
        throw new Error(`cannot run qemu-system-x86_64: ${err.message} (install qemu-system-x86: npm run setup)`);
      })
      .finally(() => {
        clearTimeout(timer);
        clearInterval(tick);
        req.signal?.removeEventListener('abort', abort);
      });
    if (req.signal?.aborted) throw new Error('boot check cancelled');
    if (!verdict) {
      // qemu ended by itself: it could not start (bad arguments, missing file), or the guest powered off.
      if (exit.code !== 0 && consoleText.length === 0) throw new Error(`qemu failed to start the instance (exit ${exit.code ?? exit.signal}): ${stderr.trim()}`);
      verdict = { passed: false, reason: `the VM stopped (qemu exit ${exit.code ?? exit.signal}) before a login prompt appeared` };
    }
    return { ...verdict, durationMs: Date.now() - started, consoleTail: consoleText.slice(-tailBytes), accel };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The qemu command line for the request (exported for tests that check what a bus or firmware maps to). */
export async function qemuArgs(req: BootCheckRequest, accel: GuestAccel, scratch: string): Promise<string[]> {
  if (req.secureBoot && req.firmware !== 'efi') throw new Error('boot check: Secure Boot needs UEFI firmware');
  const uefi = req.firmware === 'efi' ? selectUefiFirmware({ machine: req.machineType, secureBoot: !!req.secureBoot }) : undefined;
  const args = [
    '-machine',
    // graphics=off: the firmware (SeaBIOS) prints to the serial console too, so "No bootable device" is seen.
    // smm=on: OVMF's Secure Boot builds keep their variable store behind System Management Mode.
    `${MACHINE[req.machineType]},accel=${accel},graphics=off${uefi?.requiresSmm ? ',smm=on' : ''}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m',
    String(req.memoryMB),
    '-smp',
    String(Math.max(1, Math.min(req.vcpus, os.cpus().length))),
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    'stdio',
  ];
  if (uefi) {
    // A fresh variable store from the firmware's template, as a new cloud instance gets: no boot entries, so the
    // guest must boot from the removable-media path (EFI/BOOT/BOOTX64.EFI).
    const vars = path.join(scratch, 'OVMF_VARS.fd');
    await copyFile(uefi.varsTemplate, vars);
    if (uefi.requiresSmm) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${uefi.code}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  }
  if (req.diskBus === 'scsi') args.push('-device', 'virtio-scsi-pci,id=scsi0');
  if (req.diskBus === 'sata' && req.machineType === 'pc-i440fx') args.push('-device', 'ahci,id=ahci0');
  req.disks.forEach((d, i) => {
    args.push('-drive', `file=${d.path},format=${d.format},if=none,id=disk${i},snapshot=on`);
    const boot = i === 0 ? ',bootindex=1' : '';
    switch (req.diskBus) {
      case 'virtio':
        args.push('-device', `virtio-blk-pci,drive=disk${i}${boot}`);
        break;
      case 'scsi':
        args.push('-device', `scsi-hd,drive=disk${i},bus=scsi0.0${boot}`);
        break;
      case 'sata':
        // q35's built-in AHCI controller has one port per bus, named ide.0 … ide.5.
        args.push('-device', `ide-hd,drive=disk${i},bus=${req.machineType === 'pc-q35' ? `ide.${i}` : `ahci0.${i}`}${boot}`);
        break;
      case 'ide':
        args.push('-device', `ide-hd,drive=disk${i},bus=ide.${Math.floor(i / 2)},unit=${i % 2}${boot}`);
        break;
    }
  });
  args.push('-netdev', 'user,id=net0,restrict=on', '-device', `${req.nicModel === 'virtio' ? 'virtio-net-pci' : 'e1000'},netdev=net0`);
  return args;
}

export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[()][0-9A-Za-z]/g, '').replace(/\r/g, '');
}
