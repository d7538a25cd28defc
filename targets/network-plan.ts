import type { NetworkMapping } from '../shared/migration-input';
import type { NicSpec } from './target-provider';

export interface SourceNic {
  macAddress: string;
  network: string;
}

export class NetworkMappingError extends Error {
  override name = 'NetworkMappingError';
}

/** Whether a mapping is for this NIC: by its MAC when it names one, else by the NIC's source network. */
export function mappingMatches(m: Pick<NetworkMapping, 'sourceMac' | 'sourceNetwork'>, nic: SourceNic): boolean {
  return m.sourceMac ? nic.macAddress.toLowerCase() === m.sourceMac.toLowerCase() : nic.network === m.sourceNetwork;
}

/**
 * The mappings of a request naming several VMs that concern one of them. One request carries one list for all its
 * VMs, each NIC mapped by its MAC or its network, so a VM gets those that match its NICs; a mapping that matches a
 * NIC of no VM of the request stays with every VM, to be refused as matching nothing.
 */
export function mappingsForVm<M extends Pick<NetworkMapping, 'sourceMac' | 'sourceNetwork'>>(mappings: M[], vmNics: SourceNic[], requestNics: SourceNic[]): M[] {
  return mappings.filter((m) => vmNics.some((n) => mappingMatches(m, n)) || !requestNics.some((n) => mappingMatches(m, n)));
}

/**
 * Map every source NIC to a target network: a mapping by MAC wins over one by source network name. A NIC with no
 * mapping is an error (the seed: "For each source NIC, pick a target network"), as is a mapping that matches nothing.
 */
export function planNics(nics: SourceNic[], mappings: NetworkMapping[]): NicSpec[] {
  const used = new Set<NetworkMapping>();
  const plan = nics.map((nic) => {
    const mac = nic.macAddress.toLowerCase();
    const m =
      mappings.find((x) => x.sourceMac?.toLowerCase() === mac) ?? mappings.find((x) => !x.sourceMac && x.sourceNetwork === nic.network);
    if (!m) {
      throw new NetworkMappingError(
        `source NIC ${nic.macAddress} on network '${nic.network}' has no target network mapping; add one by sourceMac or sourceNetwork`,
      );
    }
    used.add(m);
    return {
      sourceMac: nic.macAddress,
      network: m.targetNetwork,
      subnet: m.targetSubnet,
      preserveMac: m.preserveMac ?? false,
      ...(m.fixedIps?.length ? { fixedIps: m.fixedIps } : {}),
      ...(m.securityGroups ? { securityGroups: m.securityGroups } : {}),
      ...(m.floatingIpNetwork ? { floatingIpNetwork: m.floatingIpNetwork } : {}),
    };
  });
  const unused = mappings.filter((m) => !used.has(m));
  if (unused.length) {
    const what = unused.map((m) => m.sourceMac ?? `network '${m.sourceNetwork}'`).join(', ');
    throw new NetworkMappingError(`network mapping(s) match no NIC of the source VM: ${what}`);
  }
  return plan;
}
