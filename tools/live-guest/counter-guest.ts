/**
 * The guest of the live-migration tests and benchmark: Debian's kernel with a busybox initramfs whose init counts,
 * forever, in memory (a shell variable) and on its disk (32 bytes of /dev/vda, at its start or `counterMiB` into it,
 * every tenth count, synced),
 * and prints each count on the serial console: "count N" and "disk N". A migration that lost memory or disk writes,
 * or paused the guest, shows in that output as a count going backwards or a gap in time. With `dirtyMiB` on the
 * kernel command line it also rewrites that many MiB of random data every second, so its memory changes at a known
 * rate while it is migrated. It boots in a few seconds under TCG with 128 MiB.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { debianKernel, moduleLoadOrder } from '../../source/agent/agent-iso';

const run = promisify(execFile);

const MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net'];

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /dev/shm
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=90% tmpfs /dev/shm
echo 0 > /proc/sys/kernel/printk
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m 2>/dev/null; done
at=0
for a in $(cat /proc/cmdline); do
  case "$a" in
    dirtyMiB=*) dirty=\${a#dirtyMiB=} ;;
    counterMiB=*) at=$((\${a#counterMiB=} * 32768)) ;;
  esac
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up
for dev in /sys/class/net/*; do ip link set "\${dev##*/}" up 2>/dev/null; done
n=$(dd if=/dev/vda bs=32 skip=$at count=1 2>/dev/null | tr -dc 0-9)
n=$((\${n:-0} + 0))
echo "counter-guest: up, disk at $n, dirtying \${dirty:-0} MiB/s"
if [ -n "$dirty" ] && [ "$dirty" -gt 0 ]; then
  dd if=/dev/urandom of=/dev/shm/src bs=1M count=$dirty 2>/dev/null
  ( while :; do dd if=/dev/shm/src of=/dev/shm/dst bs=1M count=$dirty conv=notrunc 2>/dev/null; sleep 1; done ) &
fi
while :; do
  n=$((n+1))
  echo "count $n"
  if [ $((n % 10)) -eq 0 ]; then
    printf '%031d\\n' $n | dd of=/dev/vda bs=32 seek=$at count=1 conv=notrunc,fsync 2>/dev/null && echo "disk $n"
  fi
  usleep 20000
done
`;

export interface CounterGuestBoot {
  kernel: string;
  initrd: string;
  cmdline: string;
}

function recipeHash(): string {
  return createHash('sha256').update(INIT).update(MODULES.join(',')).update(debianKernel().version).update(readFileSync('/bin/busybox')).digest('hex').slice(0, 16);
}

/**
 * The same guest as a disk image a cloud boots from a volume: a BIOS-bootable hybrid ISO (grub-mkrescue) whose
 * GRUB boots the kernel with its count kept 512 MiB into the disk, past the image. Copy it onto a volume of 1 GiB.
 */
export async function ensureCounterGuestDisk(cacheDir: string): Promise<string> {
  const parts = await ensureCounterGuest(cacheDir);
  const image = path.join(path.dirname(parts.kernel), 'counter-disk.iso');
  if (existsSync(image)) return image;
  const work = await mkdtemp(path.join(cacheDir, 'counter-disk-build-'));
  try {
    await mkdir(path.join(work, 'root/boot/grub'), { recursive: true });
    await copyFile(parts.kernel, path.join(work, 'root/boot/vmlinuz'));
    await copyFile(parts.initrd, path.join(work, 'root/boot/initrd.gz'));
    await writeFile(
      path.join(work, 'root/boot/grub/grub.cfg'),
      `set timeout=0\nset default=0\nserial --unit=0 --speed=115200\nterminal_output serial\nmenuentry "counter" {\n  linux /boot/vmlinuz console=ttyS0,115200 panic=-1 quiet counterMiB=512\n  initrd /boot/initrd.gz\n}\n`,
    );
    await run('grub-mkrescue', ['-o', path.join(work, 'disk.iso'), path.join(work, 'root')]);
    await rename(path.join(work, 'disk.iso'), image);
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Kernel and initramfs, built once per recipe into `cacheDir`. */
export async function ensureCounterGuest(cacheDir: string): Promise<{ kernel: string; initrd: string }> {
  const dir = path.join(cacheDir, `counter-guest-${recipeHash()}`);
  const parts = { kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.gz') };
  if (existsSync(parts.initrd)) return parts;
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, 'counter-guest-build-'));
  try {
    const kernel = debianKernel();
    const root = path.join(work, 'root');
    for (const d of ['bin', 'lib/modules']) await mkdir(path.join(root, d), { recursive: true });
    await copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
    await symlink('busybox', path.join(root, 'bin/sh'));
    await writeFile(path.join(root, 'init'), INIT, { mode: 0o755 });
    const order = moduleLoadOrder(kernel.modules, MODULES);
    for (const mod of order) {
      await mkdir(path.dirname(path.join(root, 'lib/modules', mod)), { recursive: true });
      await copyFile(path.join(kernel.modules, mod), path.join(root, 'lib/modules', mod));
    }
    await writeFile(path.join(root, 'lib/modules/load-order'), order.join('\n') + '\n');
    const initrd = path.join(work, 'initrd.gz');
    await run('sh', ['-c', 'cd "$1" && find . -print0 | cpio --null --create --format=newc --owner=0:0 --quiet | gzip -1 > "$2"', 'sh', root, initrd]);
    await mkdir(`${dir}.partial`, { recursive: true });
    await copyFile(kernel.vmlinuz, path.join(`${dir}.partial`, 'vmlinuz'));
    await copyFile(initrd, path.join(`${dir}.partial`, 'initrd.gz'));
    await rm(dir, { recursive: true, force: true });
    await rename(`${dir}.partial`, dir);
    return parts;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface CounterDomainSpec {
  name: string;
  uuid: string;
  memoryMiB: number;
  kernel: string;
  initrd: string;
  /** The disk's path as its host sees it (raw). */
  disk: string;
  /** Where its serial console is written, as its host sees it (each host its own file). */
  consoleLog: string;
  /** A bridge on every host the NIC is plugged into (absent: no NIC). */
  bridge?: string;
  mac?: string;
  dirtyMiB?: number;
  /** A CPU model the domain asks for (absent: the hypervisor's default). */
  cpuModel?: string;
  /** CPU features it requires on top of the model. */
  cpuFeatures?: string[];
}

export function counterDomainXml(s: CounterDomainSpec): string {
  return `<domain type='qemu'>
  <name>${s.name}</name>
  <uuid>${s.uuid}</uuid>
  <memory unit='MiB'>${s.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${s.kernel}</kernel>
    <initrd>${s.initrd}</initrd>
    <cmdline>console=ttyS0,115200 panic=-1 quiet${s.dirtyMiB ? ` dirtyMiB=${s.dirtyMiB}` : ''}</cmdline>
  </os>
  ${s.cpuModel ? `<cpu mode='custom' match='exact' check='partial'><model fallback='forbid'>${s.cpuModel}</model>${(s.cpuFeatures ?? []).map((f) => `<feature policy='require' name='${f}'/>`).join('')}</cpu>` : ''}
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='${s.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    ${s.bridge ? `<interface type='bridge'><source bridge='${s.bridge}'/>${s.mac ? `<mac address='${s.mac}'/>` : ''}<model type='virtio'/></interface>` : ''}
    <serial type='file'><source path='${s.consoleLog}' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** The console's counts, in order: what a test checks for going backwards. */
export function parseCounts(text: string): { counts: number[]; disk: number[] } {
  const counts: number[] = [];
  const disk: number[] = [];
  for (const m of text.matchAll(/^(count|disk) (\d+)\r?$/gm)) (m[1] === 'count' ? counts : disk).push(Number(m[2]));
  return { counts, disk };
}
