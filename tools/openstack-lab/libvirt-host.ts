/**
 * A libvirt "host" of the lab: libvirtd without systemd, under `unshare -m -u -n`:
 * - its own mount namespace, where /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and
 *   /etc/libvirt are bind mounts of its own directories (a system libvirtd, or another lab, is not disturbed);
 *   the lab's state tree is a shared mount, so the volumes Nova mounts there reach libvirt's qemu;
 * - its own hostname (Nova's node name, and placement's resource provider name, come from libvirt's hostname);
 * - its own network namespace with nothing but lo: guests' taps and the bridges os-vif makes for them live there,
 *   so a guest's NIC is never connected to anything on this machine;
 * - x86 emulators only: the other qemu-system-* binaries (other packages' dependencies) are hidden from it, as on
 *   an x86 compute node; libvirtd would otherwise probe each of them (~2 s apiece) before Nova's first call returns.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture, logTail, sleep, type ProcessSet, type Service } from './proc';

export interface LibvirtHost {
  hostname: string;
  /** libvirt URI for Nova's [libvirt] connection_uri (the socket of this libvirtd, from the host's side). */
  uri: string;
  /** /proc/PID/ns/net of libvirtd: where the guests' network devices are. */
  netns: string;
  /** The mount namespace's id (readlink of /proc/PID/ns/mnt), to find its qemu processes at stop. */
  mntNs: string;
  /** /proc/PID/ns/mnt of libvirtd: for nsenter. */
  mountNs: string;
  /** Its state directory (run/, lib/, log/, cache/, etc/ are its /run/libvirt, /var/lib/libvirt, …). */
  dir: string;
  service: Service;
}

const PRIVATE_DIRS: Array<[string, string]> = [
  ['run', '/run/libvirt'],
  ['lib', '/var/lib/libvirt'],
  ['log', '/var/log/libvirt'],
  ['cache', '/var/cache/libvirt'],
  ['etc', '/etc/libvirt'],
];

export async function startLibvirtHost(
  procs: ProcessSet,
  dir: string,
  hostname: string,
  migrationPort: number,
  cacheRoot: string,
  opts: {
    /** More directories of the machine seen at another path in this host only: [directory, path in the host]. */
    binds?: Array<[string, string]>;
    /**
     * CPU features this host's emulated CPU is to lack, as an older CPU model would: taken out of the probed
     * capabilities it starts with (which must be in `cacheRoot` already). A stand-in for hosts of two CPU generations.
     */
    cpuWithout?: string[];
  } = {},
): Promise<LibvirtHost> {
  const binds = opts.binds ?? [];
  for (const [d] of PRIVATE_DIRS) mkdirSync(path.join(dir, d), { recursive: true });
  mkdirSync(path.join(dir, 'lib', 'qemu'), { recursive: true });
  restoreQemuCapabilities(dir, cacheRoot);
  if (opts.cpuWithout?.length) withoutCpuFeatures(dir, opts.cpuWithout);
  writeFileSync(
    path.join(dir, 'etc', 'libvirtd.conf'),
    `unix_sock_dir = "/run/libvirt"
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "${randomUUID()}"
log_outputs = "3:stderr"
`,
  );
  writeFileSync(
    path.join(dir, 'etc', 'qemu.conf'),
    `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
namespaces = [ ]
vnc_listen = "127.0.0.1"
spice_listen = "127.0.0.1"
migration_port_min = ${migrationPort}
migration_port_max = ${migrationPort + 15}
`,
  );
  const mounts = [...PRIVATE_DIRS.map(([d, target]): [string, string] => [path.join(dir, d), target]), ...binds]
    .map(([source, target]) => `mkdir -p ${target} && mount --bind ${source} ${target}`)
    .join('\n');
  const script = `set -e
# Receive the host's later mounts (the lab's state tree is shared), send none back.
mount --make-rslave /
hostname ${hostname}
ip link set lo up
${mounts}
for b in /usr/bin/qemu-system-*; do
  case "$b" in */qemu-system-x86_64|*/qemu-system-i386) ;; *) mount --bind /dev/null "$b" ;; esac
done
exec libvirtd -f /etc/libvirt/libvirtd.conf -p ${path.join(dir, 'libvirtd.pid')}
`;
  writeFileSync(path.join(dir, 'start.sh'), script);
  const service = procs.start(`libvirtd-${hostname}`, 'unshare', ['--mount', '--uts', '--net', '--propagation', 'unchanged', 'sh', path.join(dir, 'start.sh')]);
  const pid = service.child.pid!;
  const uri = `qemu+unix:///system?socket=${path.join(dir, 'run', 'libvirt-sock')}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (service.exitCode() !== null) throw new Error(`libvirtd exited with ${service.exitCode()}:\n${logTail(service.logFile)}`);
    const name = await capture('virsh', ['-c', uri, 'hostname']).catch(() => '');
    if (name.trim() === hostname) break;
    if (Date.now() > deadline) throw new Error(`libvirtd (${hostname}) did not answer on ${uri}:\n${logTail(service.logFile)}`);
    await sleep(200);
  }
  return { hostname, uri, netns: `/proc/${pid}/ns/net`, mntNs: readlinkSync(`/proc/${pid}/ns/mnt`), mountNs: `/proc/${pid}/ns/mnt`, dir, service };
}

/**
 * libvirtd probes each qemu binary it sees for its capabilities (seconds each) unless its cache has them.
 * A private /var/cache/libvirt starts empty, so the probed files are kept in `cacheRoot`, keyed by the libvirt and
 * qemu package versions and the kernel (libvirt revalidates each file anyway).
 */
function capabilitiesCache(cacheRoot: string): string {
  const versions = execFileSync('dpkg-query', ['-W', '-f', '${Package}=${Version}\\n', 'libvirt-daemon', 'qemu-system*'], { encoding: 'utf8' });
  const key = createHash('sha256').update(versions).update(os.release()).digest('hex').slice(0, 16);
  return path.join(cacheRoot, `libvirt-qemu-capabilities-${key}`);
}

const capsDir = (dir: string) => path.join(dir, 'cache', 'qemu', 'capabilities');

export function restoreQemuCapabilities(dir: string, cacheRoot: string): void {
  const cache = capabilitiesCache(cacheRoot);
  if (existsSync(cache)) cpSync(cache, capsDir(dir), { recursive: true });
}

/**
 * Marks `features` absent from the emulated (TCG) host CPU in the capabilities libvirtd will load, so that its host
 * CPU model — what `virsh hypervisor-cpu-compare` and an incoming migration check a guest's CPU against — lacks them.
 */
function withoutCpuFeatures(dir: string, features: string[]): void {
  const files = existsSync(capsDir(dir)) ? readdirSync(capsDir(dir)).filter((f) => f.endsWith('.xml')) : [];
  let changed = 0;
  for (const f of files) {
    const file = path.join(capsDir(dir), f);
    const xml = readFileSync(file, 'utf8');
    const out = xml.replace(/<hostCPU type='tcg'[\s\S]*?<\/hostCPU>/, (block) =>
      block.replace(/<property name='([^']+)' type='boolean' value='true'( migratable='yes')?\/>/g, (prop, name: string) => {
        if (!features.includes(name)) return prop;
        changed++;
        return `<property name='${name}' type='boolean' value='false'/>`;
      }),
    );
    if (out !== xml) writeFileSync(file, out);
  }
  if (!changed) throw new Error(`no probed qemu capabilities with CPU features ${features.join(', ')} to take out (start a host without cpuWithout first: it probes them)`);
}

/** Keeps what this libvirtd probed, once the libvirt compute has asked for the capabilities. */
export function saveQemuCapabilities(dir: string, cacheRoot: string): void {
  const cache = capabilitiesCache(cacheRoot);
  const src = capsDir(dir);
  if (existsSync(cache) || !existsSync(src) || !readdirSync(src).length) return;
  const tmp = `${cache}.tmp-${process.pid}`;
  mkdirSync(cacheRoot, { recursive: true });
  cpSync(src, tmp, { recursive: true });
  try {
    renameSync(tmp, cache);
  } catch {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * A migration network between two hosts: a veth pair from one network namespace to the other, each end a port of a
 * bridge `bridge` that carries the host's address (`<subnet>.1` and `<subnet>.2`). QEMU's migration stream and the
 * disk copy of a block migration go over it; guests' NICs may plug into the same bridge. Returns the two addresses.
 */
export function linkLibvirtHosts(a: LibvirtHost, b: LibvirtHost, opts: { bridge: string; subnet: string }): [string, string] {
  // Unique on the machine while both ends are still in its namespace (several pairs may be made at once).
  const tag = randomBytes(4).toString('hex');
  const ends = [`lva${tag}`, `lvb${tag}`];
  execFileSync('ip', ['link', 'add', ends[0]!, 'type', 'veth', 'peer', 'name', ends[1]!]);
  const inNetns = (h: LibvirtHost, args: string[]) => execFileSync('nsenter', [`--net=${h.netns}`, ...args], { stdio: 'pipe' });
  return [a, b].map((h, i) => {
    const end = ends[i]!;
    const address = `${opts.subnet}.${i + 1}`;
    execFileSync('ip', ['link', 'set', end, 'netns', h.netns.split('/')[2]!]);
    inNetns(h, ['ip', 'link', 'add', opts.bridge, 'type', 'bridge']);
    inNetns(h, ['ip', 'link', 'set', end, 'master', opts.bridge]);
    inNetns(h, ['ip', 'addr', 'add', `${address}/24`, 'dev', opts.bridge]);
    inNetns(h, ['ip', 'link', 'set', end, 'up']);
    inNetns(h, ['ip', 'link', 'set', opts.bridge, 'up']);
    return address;
  }) as [string, string];
}
