/**
 * What the lab creates in a running cloud for its users: flavors, the provider network, the NFS volume type and the
 * availability zone of the libvirt compute.
 */
import { call, RestError } from './rest';

/** Nova flavors every lab has: public, sized like the classic defaults. */
export const FLAVORS = [
  { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1 },
  { id: '2', name: 'm1.small', vcpus: 1, ram: 2048, disk: 20 },
  { id: '3', name: 'm1.medium', vcpus: 2, ram: 4096, disk: 40 },
];

export const LAB_NETWORK = { name: 'lab-net', physnet: 'physnet1', subnet: 'lab-subnet', cidr: '192.0.2.0/24' };
/** An external network for routers and floating IPs (Neutron records only: no traffic goes anywhere). */
export const LAB_PUBLIC = { name: 'lab-public', physnet: 'external', subnet: 'lab-public-subnet', cidr: '198.51.100.0/24' };

export interface Endpoints {
  nova: string;
  neutron: string;
  cinder: string;
}

export async function createFlavors(token: string, nova: string): Promise<void> {
  await Promise.all(
    FLAVORS.map((f) =>
      call(token, 'POST', `${nova}/flavors`, { flavor: { ...f, 'os-flavor-access:is_public': true } }, { expect: [200, 409] }),
    ),
  );
}

export async function createNetworks(token: string, neutron: string): Promise<{ networkId: string; publicNetworkId: string }> {
  const make = async (n: typeof LAB_NETWORK, external: boolean) => {
    const net = await call<{ network: { id: string } }>(token, 'POST', `${neutron}/v2.0/networks`, {
      network: {
        name: n.name,
        shared: !external,
        'router:external': external,
        'provider:network_type': 'flat',
        'provider:physical_network': n.physnet,
      },
    });
    await call(token, 'POST', `${neutron}/v2.0/subnets`, {
      subnet: { name: n.subnet, network_id: net.network.id, ip_version: 4, cidr: n.cidr, enable_dhcp: false },
    });
    return net.network.id;
  };
  const [networkId, publicNetworkId] = await Promise.all([make(LAB_NETWORK, false), make(LAB_PUBLIC, true)]);
  return { networkId, publicNetworkId };
}

export async function createVolumeType(token: string, cinderProjectUrl: string, name: string, backend: string): Promise<string> {
  const t = await call<{ volume_type: { id: string } }>(token, 'POST', `${cinderProjectUrl}/types`, {
    volume_type: { name, 'os-volume-type-access:is_public': true, extra_specs: { volume_backend_name: backend } },
  });
  return t.volume_type.id;
}

/** A host aggregate whose availability zone is `zone`, holding `host`. */
/**
 * A host aggregate that is an availability zone. Every compute gets a zone of its own kind: Zed's scheduler finds a
 * requested zone through placement aggregates, and the default zone ("nova") has none, so a request for it could
 * land on any host — a fake-compute test would then boot on the libvirt one.
 */
export async function createZone(token: string, nova: string, zone: string, hosts: string[]): Promise<void> {
  const agg = await call<{ aggregate: { id: number } }>(token, 'POST', `${nova}/os-aggregates`, {
    aggregate: { name: zone, availability_zone: zone },
  });
  for (const host of hosts) {
    try {
      await call(token, 'POST', `${nova}/os-aggregates/${agg.aggregate.id}/action`, { add_host: { host } });
    } catch (err) {
      if (!(err instanceof RestError && err.status === 409)) throw err;
    }
  }
}
