import type { ComputeService, Hypervisor, ServerPlacement } from '../targets/openstack/nova-live-migrations';
import type { FreeCapacity } from '../targets/openstack/placement-capacity';

/**
 * The checks before a live migration, each failure a reason an operator can act on: the server ACTIVE and idle, the
 * source compute up, the destination (named, or every host the scheduler could choose) up, enabled, with room for
 * the flavor, the same hypervisor at the same version or newer, and a CPU with the features of the source's. Live or
 * block migration follows from where the server's disks are. Nova checks again; these say why before it is asked.
 */

export interface ComputeHostFacts {
  service: ComputeService;
  hypervisor?: Hypervisor;
  free?: FreeCapacity;
}

export interface LivePrerequisites {
  ok: boolean;
  problems: string[];
  /** Where it can go: the named destination, or every host that passed (the scheduler picks among them). */
  candidates: string[];
  /** live: its disks are volumes on shared storage; block: local disks are copied to the destination. */
  mode: 'live' | 'block';
}

interface CpuInfo {
  arch?: string;
  vendor?: string;
  model?: string;
  features?: string[];
}

const cpuOf = (h?: Hypervisor): CpuInfo | undefined => (h?.cpuInfo && typeof h.cpuInfo === 'object' ? (h.cpuInfo as CpuInfo) : undefined);

/** Why this host cannot take the server, or nothing. */
function hostProblems(server: ServerPlacement, source: ComputeHostFacts | undefined, dest: ComputeHostFacts, mode: 'live' | 'block'): string[] {
  const name = dest.service.host;
  const out: string[] = [];
  if (!dest.service.up) out.push(`compute ${name} is down`);
  // A server created in a zone stays in it: the scheduler does not move it to another.
  if (server.zone && dest.service.zone !== server.zone) out.push(`compute ${name} is in zone ${dest.service.zone}, the server in ${server.zone}`);
  if (!dest.service.enabled) out.push(`compute ${name} is disabled${dest.service.disabledReason ? ` (${dest.service.disabledReason})` : ''}`);
  if (dest.free) {
    const needDisk = mode === 'block' ? server.flavor.diskGB : 0;
    const short: string[] = [];
    if (dest.free.vcpus < server.flavor.vcpus) short.push(`${dest.free.vcpus} vCPUs free, ${server.flavor.vcpus} needed`);
    if (dest.free.memoryMB < server.flavor.ramMB) short.push(`${dest.free.memoryMB} MiB of memory free, ${server.flavor.ramMB} needed`);
    if (dest.free.diskGB < needDisk) short.push(`${dest.free.diskGB} GB of disk free, ${needDisk} needed for a block migration`);
    if (short.length) out.push(`compute ${name} lacks capacity: ${short.join('; ')}`);
  }
  const sh = source?.hypervisor;
  const dh = dest.hypervisor;
  if (sh && dh) {
    if (sh.type !== dh.type) out.push(`compute ${name} runs ${dh.type}, the source ${sh.type}`);
    else if (dh.version < sh.version) out.push(`compute ${name}'s hypervisor (version ${dh.version}) is older than the source's (${sh.version}): Nova does not migrate to an older one`);
  }
  const sc = cpuOf(sh);
  const dc = cpuOf(dh);
  if (sc && dc) {
    if (sc.arch && dc.arch && sc.arch !== dc.arch) out.push(`compute ${name} is ${dc.arch}, the source ${sc.arch}`);
    else if (sc.vendor && dc.vendor && sc.vendor !== dc.vendor) out.push(`compute ${name}'s CPU is ${dc.vendor}, the source's ${sc.vendor}: configure a common CPU baseline model`);
    else {
      const missing = (sc.features ?? []).filter((f) => !(dc.features ?? []).includes(f));
      if (missing.length) out.push(`compute ${name}'s CPU (${dc.model ?? 'unknown model'}) lacks features of the source's (${sc.model ?? 'unknown model'}): ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}; configure a common CPU baseline model`);
    }
  }
  return out;
}

export function checkLivePrerequisites(server: ServerPlacement, hosts: ComputeHostFacts[], opts: { destination?: string; blockMigration: 'auto' | boolean }): LivePrerequisites {
  // A server booted from a volume has its root on shared storage; one booted from an image has a local disk (unless
  // the computes share their instances directory, which Nova's own check finds out when asked with "auto").
  const mode: 'live' | 'block' = opts.blockMigration === 'auto' ? (server.bootFromVolume ? 'live' : 'block') : opts.blockMigration ? 'block' : 'live';
  const problems: string[] = [];
  if (server.status !== 'ACTIVE') problems.push(`server ${server.name} is ${server.status}: only an ACTIVE server can be live-migrated`);
  if (server.taskState) problems.push(`server ${server.name} is busy (${server.taskState}): wait for it to finish`);
  const source = hosts.find((h) => h.service.host === server.host);
  if (!server.host) problems.push(`server ${server.name} is on no compute host`);
  else if (!source) problems.push(`the server's compute ${server.host} is not a known compute service`);
  else if (!source.service.up) problems.push(`the server's compute ${server.host} is down: a live migration needs it running (evacuate the server instead)`);

  if (opts.destination) {
    const dest = hosts.find((h) => h.service.host === opts.destination);
    if (!dest) problems.push(`no compute host ${opts.destination}; there are: ${hosts.map((h) => h.service.host).join(', ')}`);
    else if (dest.service.host === server.host) problems.push(`server ${server.name} runs on ${opts.destination} already`);
    else problems.push(...hostProblems(server, source, dest, mode));
    return { ok: problems.length === 0, problems, candidates: problems.length ? [] : [opts.destination], mode };
  }
  const others = hosts.filter((h) => h.service.host !== server.host);
  const verdicts = others.map((h) => ({ host: h.service.host, why: hostProblems(server, source, h, mode) }));
  const candidates = verdicts.filter((v) => v.why.length === 0).map((v) => v.host);
  if (candidates.length === 0) {
    problems.push(others.length ? `no other compute host can take server ${server.name}: ${verdicts.map((v) => v.why.join(', ')).join('; ')}` : `there is no other compute host to move server ${server.name} to`);
  }
  return { ok: problems.length === 0, problems, candidates, mode };
}
