import type { NetworkMapping } from '../../shared/migration-input';
import { NetworkMappingError } from '../../targets/network-plan';
import type { NicSpec } from '../../targets/target-provider';
import type { SourceMachinePlan } from '../source-provider';
import type { DiscoveredMachine } from './discovered-machine';

/** The source-side plan of a machine the agent found: no power control, no change tracking, no snapshots. */
export function agentMachinePlan(machineId: string, m: DiscoveredMachine): SourceMachinePlan {
  return {
    kind: 'agent',
    machineId,
    name: m.guest.name || machineId,
    hardware: {
      sockets: m.cpu.sockets,
      coresPerSocket: m.cpu.coresPerSocket,
      memoryBytes: m.memoryBytes,
      firmware: m.firmware === 'uefi' ? 'efi' : 'bios',
      nics: m.nics.map((n) => ({ mac: n.mac, network: '', link: n.link, addresses: n.addresses })),
    },
    guest: {
      family: m.guest.type === 'unknown' ? 'other' : m.guest.type,
      distro: m.guest.distro,
      version: m.guest.version,
      productName: m.guest.productName,
      hostname: m.guest.hostname,
      encrypted: m.guest.encrypted,
      notes: m.guest.notes ?? undefined,
    },
    disks: m.disks.map((d) => ({ key: d.index, label: d.name, capacityBytes: d.sizeBytes, model: d.model, serial: d.serial })),
    capabilities: { powerControl: false, changeTracking: false, snapshots: false },
  };
}

/**
 * A template serves many machines, so its network mappings are by MAC for the machines it knows, and the first one
 * without a MAC for every other NIC. A MAC mapping that matches no NIC of this machine is someone else's: ignored.
 */
export function planAgentNics(nics: Array<{ mac: string }>, mappings: NetworkMapping[]): NicSpec[] {
  const fallback = mappings.find((m) => !m.sourceMac && m.sourceNetwork === '*');
  return nics.map((nic) => {
    const m = mappings.find((x) => x.sourceMac?.toLowerCase() === nic.mac.toLowerCase()) ?? fallback;
    if (!m) throw new NetworkMappingError(`NIC ${nic.mac} of the machine has no target network in the template; add one with sourceNetwork "*" (every NIC) or one for this MAC`);
    return {
      sourceMac: nic.mac,
      network: m.targetNetwork,
      subnet: m.targetSubnet,
      preserveMac: m.preserveMac ?? false,
      ...(m.fixedIps?.length && m.sourceMac ? { fixedIps: m.fixedIps } : {}),
      ...(m.securityGroups ? { securityGroups: m.securityGroups } : {}),
      ...(m.floatingIpNetwork ? { floatingIpNetwork: m.floatingIpNetwork } : {}),
    };
  });
}
