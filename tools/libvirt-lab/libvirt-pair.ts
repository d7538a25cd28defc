/**
 * Two KVM "hosts" on one machine for live migration: two libvirtds (tools/openstack-lab/libvirt-host.ts), each in
 * its own mount, UTS and network namespace, joined by a veth pair. In each namespace the veth end is a port of a
 * bridge that carries the host's address on the migration network (10.231.0.1 and .2): QEMU's migration stream and
 * the disk copy go over it, and guests' NICs plug into the same bridge on either host, so an instance with a NIC
 * moves with its NIC (its tap is made again on the destination's side). Each host has a dir storage pool "default"
 * at its own /var/lib/libvirt/images.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labProcesses, ProcessSet, sleep } from '../openstack-lab/proc';
import { linkLibvirtHosts, saveQemuCapabilities, startLibvirtHost, type LibvirtHost } from '../openstack-lab/libvirt-host';

export const MIGRATION_BRIDGE = 'br-live';

export interface PairHost extends LibvirtHost {
  /** Its address on the migration network (and the bridge's). */
  address: string;
  /** A path of its /var/lib/libvirt/images or /var/log/libvirt as this process sees it. */
  imagesDir: string;
  logDir: string;
}

export interface LibvirtPair {
  hosts: [PairHost, PairHost];
  dir: string;
  stop(): Promise<void>;
}

export async function startLibvirtPair(opts: {
  cacheRoot: string;
  names?: [string, string];
  dir?: string;
  /** CPU features the second host's CPU lacks (an older CPU generation; see startLibvirtHost's cpuWithout). */
  secondCpuWithout?: string[];
}): Promise<LibvirtPair> {
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'vmigrate-libvirt-pair-'));
  const logDir = path.join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const procs = new ProcessSet(logDir);
  const names = opts.names ?? ['kvm-a', 'kvm-b'];
  const started: LibvirtHost[] = [];
  const stop = async () => {
    await procs.stopAll();
    // qemu is daemonized by libvirtd: it lives on in the host's mount namespace.
    for (let i = 0; i < 3; i++) {
      const left = started.flatMap((h) => labProcesses(dir + '/', h.mntNs));
      if (!left.length) break;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(200);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = 49152 + (process.pid % 200) * 32;
    for (const [i, name] of names.entries()) {
      const host = await startLibvirtHost(procs, path.join(dir, name), name, base + i * 16, opts.cacheRoot, i === 1 && opts.secondCpuWithout ? { cpuWithout: opts.secondCpuWithout } : {});
      started.push(host);
      if (i === 0) {
        // Its qemu capabilities probed now and kept: the second host starts from them (and later pairs faster).
        execFileSync('virsh', ['-c', host.uri, 'domcapabilities', '--virttype', 'qemu', '--arch', 'x86_64'], { stdio: 'pipe' });
        saveQemuCapabilities(host.dir, opts.cacheRoot);
      }
    }
    const addresses = linkLibvirtHosts(started[0]!, started[1]!, { bridge: MIGRATION_BRIDGE, subnet: '10.231.0' });
    const hosts = started.map((h, i) => {
      const address = addresses[i]!;
      const imagesDir = path.join(h.dir, 'lib', 'images');
      mkdirSync(imagesDir, { recursive: true });
      mkdirSync(path.join(h.dir, 'log', 'qemu'), { recursive: true });
      return { ...h, address, imagesDir, logDir: path.join(h.dir, 'log') };
    }) as [PairHost, PairHost];
    for (const h of hosts) {
      execFileSync('virsh', ['-c', h.uri, 'pool-define-as', 'default', 'dir', '--target', '/var/lib/libvirt/images'], { stdio: 'pipe' });
      execFileSync('virsh', ['-c', h.uri, 'pool-start', 'default'], { stdio: 'pipe' });
    }
    return { hosts, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
