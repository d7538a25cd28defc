/**
 * The removable-media boot path of a UEFI guest (EFI/BOOT/BOOTX64.EFI on its EFI system partition). The boot entry
 * an installer registers lives in the VM's NVRAM, which stays behind on vSphere; a new instance starts with an empty
 * variable store, and its firmware then boots only that fallback path. Many Linux installers (Debian's among them)
 * do not write it, and virt-v2v 2.2 adds it only for a few old distributions ("Can't fix UEFI bootloader. VM may not
 * boot."), so after conversion we add it ourselves when it is missing: shim with its second stage (GRUB) and
 * MokManager when the guest boots through shim — what Secure Boot needs —, else the distribution's GRUB, else
 * Windows' boot manager. shim's fallback loader (fbx64.efi) is not copied: beside shim on that path it would
 * re-create NVRAM entries and reset the machine on every first boot.
 */
import { libguestfsEnv } from './libguestfs-env';
import { spawnTool } from './tool-process';

export interface UefiBootPathPlan {
  /** Already there: nothing to do. */
  present: boolean;
  /** Files to copy, ESP-relative paths as the file system has them. */
  copies: Array<{ from: string; to: string }>;
  /** The loader the fallback path starts (ESP-relative), when one was found. */
  loader?: string;
  /** Why nothing can be done, when nothing is there to copy. */
  reason?: string;
}

export interface UefiBootPathReport extends UefiBootPathPlan {
  /** Whether this conversion wrote the fallback path. */
  added: boolean;
  durationMs: number;
}

/**
 * From the ESP's file list (`find /EFI`, paths relative to /EFI), what to copy. `distro` (inspection's) picks the
 * vendor directory when there are several.
 */
export function planUefiBootPath(files: string[], distro?: string): UefiBootPathPlan {
  const lower = new Map(files.map((f) => [f.toLowerCase(), f]));
  if (lower.has('boot/bootx64.efi')) return { present: true, copies: [] };
  const vendors = [...new Set(files.map((f) => f.split('/')[0]).filter((d) => d && d.toLowerCase() !== 'boot' && files.some((f) => f.toLowerCase().startsWith(`${d.toLowerCase()}/`))))];
  vendors.sort((a, b) => Number(b.toLowerCase() === distro?.toLowerCase()) - Number(a.toLowerCase() === distro?.toLowerCase()));
  const file = (dir: string, name: string) => lower.get(`${dir.toLowerCase()}/${name}`);
  for (const dir of vendors) {
    const shim = file(dir, 'shimx64.efi');
    if (!shim) continue;
    const copies = [{ from: shim, to: 'BOOT/BOOTX64.EFI' }];
    for (const second of ['grubx64.efi', 'mmx64.efi']) {
      const f = file(dir, second);
      if (f) copies.push({ from: f, to: `BOOT/${second}` });
    }
    return { present: false, copies, loader: shim };
  }
  for (const dir of vendors) {
    const grub = file(dir, 'grubx64.efi');
    if (grub) return { present: false, copies: [{ from: grub, to: 'BOOT/BOOTX64.EFI' }], loader: grub };
  }
  const windows = lower.get('microsoft/boot/bootmgfw.efi');
  if (windows) return { present: false, copies: [{ from: windows, to: 'BOOT/BOOTX64.EFI' }], loader: windows };
  return { present: false, copies: [], reason: `no boot loader found on the EFI system partition (EFI/ holds ${vendors.join(', ') || 'nothing'})` };
}

/**
 * Looks at the ESP (partition `espPartition` of the boot disk) in one libguestfs appliance and, when the fallback
 * path is missing, copies the loader there. The disk is a conversion clone: written in place.
 */
export async function ensureUefiBootPath(req: {
  disk: { path: string; format: 'raw' | 'qcow2' };
  espPartition: number;
  distro?: string;
  signal?: AbortSignal;
  /** Called every few seconds while the appliance runs (the activity's heartbeat). */
  onTick?: () => void;
}): Promise<UefiBootPathReport> {
  const started = Date.now();
  const fish = new GuestfishSession(['--rw', `--format=${req.disk.format}`, '-a', req.disk.path], req.signal);
  const tick = req.onTick ? setInterval(req.onTick, 5000) : undefined;
  try {
    await fish.command('run');
    await fish.command(`mount /dev/sda${req.espPartition} /`);
    // guestfish prints the paths below /EFI with a leading slash.
    const files = (await fish.command('find /EFI')).map((l) => l.replace(/^\/+/, '')).filter((l) => l.length > 0);
    const plan = planUefiBootPath(files, req.distro);
    if (!plan.present && plan.copies.length) {
      await fish.command('mkdir-p /EFI/BOOT');
      for (const c of plan.copies) await fish.command(`cp "/EFI/${c.from}" "/EFI/${c.to}"`);
      await fish.command('sync');
    }
    await fish.command('umount-all');
    await fish.close();
    return { ...plan, added: !plan.present && plan.copies.length > 0, durationMs: Date.now() - started };
  } catch (err) {
    fish.kill();
    throw err;
  } finally {
    if (tick) clearInterval(tick);
  }
}

/**
 * guestfish driven command by command over its stdin: each command is followed by an `echo` of a marker, and its
 * output is what came before the marker. guestfish reading a pipe exits at the first failing command, which ends
 * the session with its error.
 */
class GuestfishSession {
  private readonly tool;
  private out = '';
  private err = '';
  private seq = 0;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private waiter: (() => void) | undefined;

  constructor(args: string[], signal?: AbortSignal) {
    this.tool = spawnTool('guestfish', args, { env: libguestfsEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.tool.child.stdout!.on('data', (b: Buffer) => {
      this.out += b.toString();
      this.waiter?.();
    });
    this.tool.child.stderr!.on('data', (b: Buffer) => (this.err = (this.err + b.toString()).slice(-4000)));
    this.tool.ended.then(
      (e) => {
        this.exited = e;
        this.waiter?.();
      },
      (e: Error) => {
        this.exited = { code: null, signal: null };
        this.err += `cannot run guestfish: ${e.message} (install libguestfs-tools: npm run setup)`;
        this.waiter?.();
      },
    );
    signal?.addEventListener('abort', () => this.kill(), { once: true });
  }

  async command(cmd: string): Promise<string[]> {
    const marker = `@@vmigrate-${++this.seq}@@`;
    this.tool.child.stdin!.write(`${cmd}\necho ${marker}\n`);
    for (;;) {
      const at = this.out.indexOf(`${marker}\n`);
      if (at >= 0) {
        const output = this.out.slice(0, at);
        this.out = this.out.slice(at + marker.length + 1);
        return output.split('\n').slice(0, -1);
      }
      if (this.exited) throw new Error(`guestfish failed at '${cmd}' (${this.exited.signal ?? `exit ${this.exited.code}`}): ${this.err.trim().split('\n').slice(-3).join(' | ')}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
  }

  async close(): Promise<void> {
    this.tool.child.stdin!.end('exit\n');
    const end = await this.tool.ended;
    if (end.code !== 0) throw new Error(`guestfish exited with ${end.signal ?? end.code}: ${this.err.trim().split('\n').slice(-3).join(' | ')}`);
  }

  kill(): void {
    this.tool.kill('SIGKILL');
  }
}
