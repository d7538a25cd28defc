import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The boot ISO of agent-based migration, built offline from Debian 12 packages already on the machine: the kernel
 * of linux-image-amd64 (and the drivers a server or VM boots with), busybox-static, and the agent (Go, static).
 * GRUB (grub-pc-bin and grub-efi-amd64-bin, through grub-mkrescue) makes it boot with BIOS and with UEFI, from a
 * CD-ROM or written to a USB stick. The expensive part (agent, initramfs) is cached per recipe; what one download
 * carries (the API address, its enrollment key, the certificate fingerprint) is a small second initramfs GRUB loads
 * beside it. Secure Boot: this GRUB is unsigned, so turn Secure Boot off to boot the ISO.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const AGENT_SOURCE = path.join(REPO, 'agent');

/** Outside any checkout, shared by the machine's processes (VMIGRATE_CACHE_DIR, else ~/.cache/vmigrate). */
export function defaultAgentIsoCacheDir(): string {
  return path.join(process.env.VMIGRATE_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'vmigrate'), 'agent-iso');
}

/** Drivers loaded at boot, in this order after their dependencies: disks, NICs and file systems of servers and VMs. */
export const AGENT_MODULES = [
  'virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'sd_mod', 'ahci', 'ata_piix', 'ata_generic', 'nvme',
  'mptspi', 'vmw_pvscsi', 'hv_storvsc', 'megaraid_sas', 'mpt3sas', 'e1000', 'e1000e', 'igb', 'ixgbe', 'vmxnet3',
  'hv_netvsc', 'tg3', 'bnx2', 'r8169', 'ext4', 'xfs', 'vfat', 'nls_cp437', 'nls_iso8859_1', 'crc32c_generic',
];

export interface AgentIsoConfig {
  apiUrl: string;
  apiFingerprint: string;
  enrollmentKey: string;
  templateId: string;
}

/** The Debian kernel the ISO boots: the newest installed linux-image with its modules. */
export function debianKernel(): { version: string; vmlinuz: string; modules: string } {
  const versions = readdirSync('/lib/modules').filter((v) => existsSync(`/boot/vmlinuz-${v}`) && existsSync(`/lib/modules/${v}/modules.dep`));
  versions.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const version = versions.at(-1);
  if (!version) throw new Error('no Debian kernel (linux-image-amd64) is installed: scripts/setup.sh installs it');
  return { version, vmlinuz: `/boot/vmlinuz-${version}`, modules: `/lib/modules/${version}` };
}

const INIT = `#!/bin/busybox sh
# vmigrate agent ISO: bring up the drivers and the network, then run the agent (again, if it ever exits).
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /run /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -d /sys/firmware/efi ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
echo 0 > /proc/sys/kernel/printk
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m 2>/dev/null; done
sleep 1
ip link set lo up
for dev in /sys/class/net/*; do
  n=\${dev##*/}
  [ "$n" = lo ] && continue
  ip link set "$n" up
  udhcpc -i "$n" -s /etc/udhcpc.script -q -n -t 5 -T 2 >/dev/null 2>&1 &
done
wait
echo "vmigrate agent: network up: $(ip -4 -o addr show | awk '{print $2" "$4}' | tr '\\n' ' ')"
while true; do
  /usr/bin/vmigrate-agent -config /etc/vmigrate-agent.json
  echo "vmigrate agent exited; starting it again in 10 s"
  sleep 10
done
`;

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via \${router%% *} dev "$interface" 2>/dev/null
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
`;

function grubCfg(kernelArgs: string): string {
  return `set timeout=2
set default=0
menuentry "vmigrate migration agent" {
  linux /boot/vmlinuz ${kernelArgs}
  initrd /boot/initrd.gz /boot/vmigrate.cpio
}
`;
}

/** Kernel arguments: the console on the screen and the first serial port (where labs and tests read it). */
const KERNEL_ARGS = 'console=tty0 console=ttyS0,115200 panic=10 quiet';

/**
 * Programs of Debian packages the agent runs, copied with the shared libraries they load: ntfs-3g's tools read the
 * registry of a Windows guest from its NTFS volume without mounting it (Debian 12's kernel has no NTFS driver).
 */
export const AGENT_TOOLS = ['/usr/bin/ntfsls', '/usr/bin/ntfscat'];

/** A program and the libraries it loads (the dynamic loader included), as ldd resolves them. */
function withLibraries(program: string): string[] {
  const out = execFileSync('ldd', [program], { encoding: 'utf8' });
  const libs = [...out.matchAll(/(?:=>\s*)?(\/[^\s]+)\s+\(0x/g)].map((m) => m[1]!);
  return [program, ...libs];
}

/** The recipe's identity: the agent's source, this builder, the kernel, busybox and the tools. */
export function agentIsoRecipeHash(): string {
  const h = createHash('sha256').update(readFileSync(__filename));
  for (const f of readdirSync(AGENT_SOURCE).sort()) if (f.endsWith('.go') || f === 'go.mod') h.update(f).update(readFileSync(path.join(AGENT_SOURCE, f)));
  h.update(debianKernel().version).update(readFileSync('/bin/busybox'));
  for (const tool of AGENT_TOOLS) for (const f of withLibraries(tool)) h.update(f).update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** Topological order of the modules and their dependencies, from the kernel's modules.dep. */
export function moduleLoadOrder(modulesDir: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(path.join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod) deps.set(mod, (rest ?? '').trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map<string, string>();
  for (const mod of deps.keys()) byName.set(path.basename(mod).replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_'), mod);
  const order: string[] = [];
  const visit = (mod: string) => {
    if (order.includes(mod)) return;
    for (const d of deps.get(mod) ?? []) visit(d);
    order.push(mod);
  };
  for (const name of wanted) {
    const mod = byName.get(name);
    if (mod) visit(mod); // a driver this kernel builds in, or lacks, is simply not loaded
  }
  return order;
}

/** The agent binary and the base initramfs, built once per recipe into `cacheDir`. */
export async function ensureAgentIsoParts(cacheDir: string): Promise<{ vmlinuz: string; initrd: string; agent: string }> {
  const hash = agentIsoRecipeHash();
  const dir = path.join(cacheDir, `agent-iso-${hash}`);
  const parts = { vmlinuz: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.gz'), agent: path.join(dir, 'vmigrate-agent') };
  if (existsSync(parts.initrd)) return parts;
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, 'agent-iso-build-'));
  try {
    const kernel = debianKernel();
    const agent = path.join(work, 'vmigrate-agent');
    await run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', agent, '.'], {
      cwd: AGENT_SOURCE,
      env: { ...process.env, CGO_ENABLED: '0', GOOS: 'linux', GOARCH: 'amd64', GOFLAGS: '-mod=mod' },
    });
    const root = path.join(work, 'root');
    for (const d of ['bin', 'usr/bin', 'etc', 'lib/modules', 'proc', 'sys', 'dev', 'run', 'tmp']) await mkdir(path.join(root, d), { recursive: true });
    await copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
    await symlink('busybox', path.join(root, 'bin/sh'));
    await copyFile(agent, path.join(root, 'usr/bin/vmigrate-agent'));
    for (const tool of AGENT_TOOLS) {
      for (const f of withLibraries(tool)) {
        await mkdir(path.join(root, path.dirname(f)), { recursive: true });
        await copyFile(f, path.join(root, f)); // follows the soname's link: the loader looks the file up by it
      }
    }
    await writeFile(path.join(root, 'init'), INIT, { mode: 0o755 });
    await writeFile(path.join(root, 'etc/udhcpc.script'), UDHCPC_SCRIPT, { mode: 0o755 });
    const order = moduleLoadOrder(kernel.modules, AGENT_MODULES);
    for (const mod of order) {
      const to = path.join(root, 'lib/modules', mod);
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(path.join(kernel.modules, mod), to);
    }
    await writeFile(path.join(root, 'lib/modules/load-order'), order.join('\n') + '\n');
    await chmod(path.join(root, 'init'), 0o755);
    const cpio = path.join(work, 'initrd.gz');
    await run('sh', ['-c', `cd "${root}" && find . -print0 | cpio --null --create --format=newc --owner=0:0 --quiet | gzip -6 > "${cpio}"`]);
    await mkdir(`${dir}.partial`, { recursive: true });
    await copyFile(kernel.vmlinuz, path.join(`${dir}.partial`, 'vmlinuz'));
    await copyFile(agent, path.join(`${dir}.partial`, 'vmigrate-agent'));
    await copyFile(cpio, path.join(`${dir}.partial`, 'initrd.gz'));
    await rm(dir, { recursive: true, force: true });
    await rename(`${dir}.partial`, dir);
    return parts;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A newc cpio archive holding one file (the agent's configuration), as GRUB's second initrd. */
function cpioWithFile(name: string, content: Buffer, mode = 0o100600): Buffer {
  const entries: Buffer[] = [];
  const entry = (n: string, data: Buffer, m: number, ino: number) => {
    const fields = [ino, m, 0, 0, 1, 0, data.length, 0, 0, 0, 0, n.length + 1, 0];
    const header = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
    const head = Buffer.from(header + n + '\0', 'latin1');
    const pad1 = Buffer.alloc((4 - (head.length % 4)) % 4);
    const pad2 = Buffer.alloc((4 - (data.length % 4)) % 4);
    entries.push(head, pad1, data, pad2);
  };
  entry('etc', Buffer.alloc(0), 0o040755, 1);
  entry(name, content, mode, 2);
  entry('TRAILER!!!', Buffer.alloc(0), 0, 0);
  return Buffer.concat(entries);
}

/** One ISO for one download: the cached parts plus this download's configuration. Returns the ISO's path. */
export async function buildAgentIso(opts: { cacheDir: string; config: AgentIsoConfig; outDir?: string }): Promise<string> {
  const parts = await ensureAgentIsoParts(opts.cacheDir);
  const work = await mkdtemp(path.join(opts.outDir ?? os.tmpdir(), 'vmigrate-iso-'));
  const tree = path.join(work, 'tree');
  await mkdir(path.join(tree, 'boot/grub'), { recursive: true });
  await copyFile(parts.vmlinuz, path.join(tree, 'boot/vmlinuz'));
  await copyFile(parts.initrd, path.join(tree, 'boot/initrd.gz'));
  await writeFile(path.join(tree, 'boot/vmigrate.cpio'), cpioWithFile('etc/vmigrate-agent.json', Buffer.from(JSON.stringify(opts.config))), { mode: 0o600 });
  await writeFile(path.join(tree, 'boot/grub/grub.cfg'), grubCfg(KERNEL_ARGS));
  const iso = path.join(work, 'vmigrate-agent.iso');
  await run('grub-mkrescue', ['-o', iso, tree, '--', '-volid', 'VMIGRATE_AGENT'], { maxBuffer: 16 << 20 });
  await rm(tree, { recursive: true, force: true });
  return iso;
}
