import type { LibvirtHostConfig, LibvirtTargetConfig } from '../target-config';
import { isNoDomain, Virsh } from './virsh';

/**
 * The KVM hosts of a libvirt target, each through its libvirtd: where a domain runs, and what each host is
 * (reachable, its hypervisor and version, its free memory, CPUs and pool space).
 */

export interface DomainOnHost {
  host: string;
  /** virsh domstate: running, paused, shut off, … */
  state: string;
}

export interface LibvirtHostFacts {
  host: string;
  reachable: boolean;
  /** Why it could not be asked (when not reachable). */
  error?: string;
  hypervisor?: { type: string; version: number };
  cpus?: number;
  /** Memory free for guests: free plus the page cache the kernel gives back. */
  freeMemoryMB?: number;
  /** vCPUs its running domains use. */
  vcpusUsed?: number;
  poolAvailableBytes?: number;
}

/** How many vCPUs a host may run per CPU (Nova's default cpu_allocation_ratio). */
export const CPU_ALLOCATION_RATIO = 16;

export class LibvirtHosts {
  private readonly clients = new Map<string, Virsh>();

  constructor(
    readonly targetName: string,
    readonly config: LibvirtTargetConfig,
  ) {}

  host(name: string): LibvirtHostConfig {
    const h = this.config.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`target ${this.targetName} has no host ${name}; its hosts: ${this.config.hosts.map((x) => x.name).join(', ')}`);
    return h;
  }

  virsh(name: string): Virsh {
    const existing = this.clients.get(name);
    if (existing) return existing;
    const client = new Virsh(this.host(name).uri);
    this.clients.set(name, client);
    return client;
  }

  /**
   * Every host that has the domain, with its state. A host that does not answer is skipped (it cannot run the domain
   * for us) unless named in `mustAnswer`: where the answer decides an outcome, not knowing is an error.
   */
  async locate(domain: string, opts: { mustAnswer?: string[] } = {}): Promise<DomainOnHost[]> {
    const found = await Promise.all(
      this.config.hosts.map(async (h) => {
        try {
          const state = (await this.virsh(h.name).run(['domstate', domain])).trim();
          return { host: h.name, state };
        } catch (err) {
          if (isNoDomain(err) || !opts.mustAnswer?.includes(h.name)) return undefined;
          throw err;
        }
      }),
    );
    return found.filter((x): x is DomainOnHost => !!x);
  }

  async facts(name: string): Promise<LibvirtHostFacts> {
    const v = this.virsh(name);
    try {
      const [version, nodeinfo, mem, domains, pool] = await Promise.all([
        v.fields(['version', '--daemon']),
        v.fields(['nodeinfo']),
        v.fields(['nodememstats']),
        v.run(['list', '--state-running', '--name']),
        v.fields(['pool-info', '--bytes', this.config.storagePool]).catch(() => new Map<string, string>()),
      ]);
      const running = version.get('Running hypervisor')?.match(/^(\S+)\s+(\d+)\.(\d+)\.(\d+)/);
      const kib = (k: string) => Number((mem.get(k) ?? '0').replace(/\s*KiB$/, ''));
      let vcpusUsed = 0;
      for (const d of domains.split('\n').map((l) => l.trim()).filter(Boolean)) {
        vcpusUsed += Number((await v.fields(['dominfo', d]).catch(() => new Map<string, string>())).get('CPU(s)') ?? 0);
      }
      return {
        host: name,
        reachable: true,
        ...(running ? { hypervisor: { type: running[1]!, version: Number(running[2]) * 1_000_000 + Number(running[3]) * 1000 + Number(running[4]) } } : {}),
        cpus: Number(nodeinfo.get('CPU(s)') ?? 0),
        freeMemoryMB: Math.floor((kib('free') + kib('buffers') + kib('cached')) / 1024),
        vcpusUsed,
        ...(pool.get('Available') ? { poolAvailableBytes: Number(pool.get('Available')!.replace(/\s*bytes$/, '')) } : {}),
      };
    } catch (err) {
      return { host: name, reachable: false, error: (err as Error).message };
    }
  }
}
