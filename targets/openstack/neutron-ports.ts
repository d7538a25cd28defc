import { usageRecords, type QuotaSet } from './openstack-quotas';
import { TargetAuthError, TargetNotFoundError, TargetResourceError } from '../target-errors';
import type { NicSpec } from '../target-provider';
import type { ApiResponse, CallOptions, OpenStackApi } from './openstack-api';

/**
 * Neutron ports for the migrated instance's NICs: one per source NIC on the mapped network and subnet, with the
 * source MAC and fixed IPs when asked, security groups and an optional floating IP. Each port is named after its
 * migration and NIC (the lookup a retried create does) and tagged with the migration (what a cleanup lists).
 */

export interface NeutronPort {
  id: string;
  name: string;
  network_id: string;
  mac_address: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
  tags?: string[];
  device_id?: string;
  status?: string;
}

interface Named {
  id: string;
  name: string;
}

export class NeutronPorts {
  constructor(readonly api: OpenStackApi) {}

  /** A network by id, or by name among those the project can see; an ambiguous name is an error. */
  async network(ref: string): Promise<Named & { subnets: string[] }> {
    return this.named('networks', 'network', ref);
  }

  /** The networks the project can use (its own, shared and external ones), each with its subnets. */
  async listNetworks(): Promise<Array<{ id: string; name: string; external: boolean; subnets: Array<{ id: string; name: string; cidr: string }> }>> {
    const [nets, subs] = await Promise.all([
      this.api.call<{ networks: Array<Named & { 'router:external'?: boolean; subnets: string[] }> }>('GET', '/v2.0/networks', { what: `listing networks of project ${this.api.project}` }),
      this.api.call<{ subnets: Array<Named & { cidr: string; network_id: string }> }>('GET', '/v2.0/subnets', { what: `listing subnets of project ${this.api.project}` }),
    ]);
    return nets.body.networks.map((n) => ({
      id: n.id,
      name: n.name,
      external: n['router:external'] === true,
      subnets: subs.body.subnets.filter((x) => x.network_id === n.id).map((x) => ({ id: x.id, name: x.name, cidr: x.cidr })),
    }));
  }

  async subnet(ref: string, networkId: string): Promise<Named> {
    const s = await this.named<Named & { network_id: string }>('subnets', 'subnet', ref);
    if (s.network_id !== networkId) throw new TargetNotFoundError(`subnet '${ref}' is not on network ${networkId}`);
    return s;
  }

  async securityGroup(ref: string): Promise<Named> {
    const projectId = await this.api.projectId();
    return this.named('security-groups', 'security group', ref, { project_id: projectId });
  }

  /** Ports on the network with this MAC (those the project can see). */
  async portsWithMac(networkId: string, mac: string): Promise<NeutronPort[]> {
    const { body } = await this.api.call<{ ports: NeutronPort[] }>('GET', '/v2.0/ports', { query: { network_id: networkId, mac_address: mac.toLowerCase() }, what: `looking for ports with MAC ${mac}` });
    return body.ports.filter((p) => p.mac_address.toLowerCase() === mac.toLowerCase());
  }

  /** The project's networking quotas with what is in use. */
  async quotaUsage(): Promise<QuotaSet> {
    const projectId = await this.api.projectId();
    const { body } = await this.api.call<{ quota: Record<string, unknown> }>('GET', `/v2.0/quotas/${encodeURIComponent(projectId)}/details`, { what: `reading the network quotas of project ${this.api.project}` });
    return usageRecords(body.quota);
  }

  async findByName(name: string): Promise<NeutronPort | undefined> {
    const { body } = await this.api.call<{ ports: NeutronPort[] }>('GET', '/v2.0/ports', { query: { name }, what: `looking up port ${name}` });
    return body.ports.find((p) => p.name === name);
  }

  async listTagged(tag: string): Promise<NeutronPort[]> {
    const { body } = await this.api.call<{ ports: NeutronPort[] }>('GET', '/v2.0/ports', { query: { tags: tag }, what: `listing ports tagged ${tag}` });
    return body.ports.filter((p) => p.tags?.includes(tag));
  }

  /** The NIC's port, created unless a port of that name exists already (then it is checked against the NIC). */
  async ensurePort(name: string, tag: string, nic: NicSpec, description: string): Promise<NeutronPort> {
    const network = await this.network(nic.network);
    const subnet = nic.subnet ? await this.subnet(nic.subnet, network.id) : undefined;
    const groups = nic.securityGroups ? await Promise.all(nic.securityGroups.map((g) => this.securityGroup(g))) : undefined;
    let port = await this.findByName(name);
    if (!port) {
      const fixedIps = nic.fixedIps?.length
        ? nic.fixedIps.map((ip) => ({ ...(subnet ? { subnet_id: subnet.id } : {}), ip_address: ip }))
        : subnet
          ? [{ subnet_id: subnet.id }]
          : undefined;
      const { body } = await this.createPort({
        body: {
          port: {
            name,
            description,
            network_id: network.id,
            ...(nic.preserveMac ? { mac_address: nic.sourceMac.toLowerCase() } : {}),
            ...(fixedIps ? { fixed_ips: fixedIps } : {}),
            ...(groups ? { security_groups: groups.map((g) => g.id) } : {}),
          },
        },
        what: `creating port ${name} on network ${nic.network}${nic.preserveMac ? ` with MAC ${nic.sourceMac}` : ''}`,
      }, nic);
      port = body.port;
    }
    if (port.network_id !== network.id) throw new TargetResourceError(`port ${name} (${port.id}) exists on another network than ${nic.network}`);
    if (nic.preserveMac && port.mac_address.toLowerCase() !== nic.sourceMac.toLowerCase()) {
      throw new TargetResourceError(`port ${name} (${port.id}) has MAC ${port.mac_address}, not the source's ${nic.sourceMac}`);
    }
    if (!port.tags?.includes(tag)) {
      await this.api.call('PUT', `/v2.0/ports/${port.id}/tags/${encodeURIComponent(tag)}`, { what: `tagging port ${port.id}` });
    }
    if (nic.floatingIpNetwork) await this.ensureFloatingIp(port, nic.floatingIpNetwork, tag);
    return port;
  }

  /** A refusal by Neutron's policy to let this project choose a MAC or fixed IP says what to do about it. */
  private async createPort(opts: CallOptions, nic: NicSpec): Promise<ApiResponse<{ port: NeutronPort }>> {
    try {
      return await this.api.call<{ port: NeutronPort }>('POST', '/v2.0/ports', opts);
    } catch (err) {
      if (err instanceof TargetAuthError && (nic.preserveMac || nic.fixedIps?.length)) {
        throw new TargetAuthError(
          `Neutron's policy does not let project ${this.api.project} choose ${nic.preserveMac ? 'the MAC address' : 'fixed IPs'} of a port on network ` +
            `'${nic.network}' (on a network another project owns, only an admin may): map the NIC to a network the project owns, ` +
            `ask the cloud's operator to allow it, or migrate it without ${nic.preserveMac ? 'preserveMac' : 'fixedIps'} (${err.message})`,
        );
      }
      throw err;
    }
  }

  async ensureFloatingIp(port: NeutronPort, externalNetwork: string, tag: string): Promise<string> {
    const { body } = await this.api.call<{ floatingips: Array<{ id: string; floating_ip_address: string }> }>('GET', '/v2.0/floatingips', {
      query: { port_id: port.id },
      what: `looking up the floating IP of port ${port.id}`,
    });
    if (body.floatingips[0]) return body.floatingips[0].floating_ip_address;
    const ext = await this.network(externalNetwork);
    const created = await this.api.call<{ floatingip: { id: string; floating_ip_address: string } }>('POST', '/v2.0/floatingips', {
      body: { floatingip: { floating_network_id: ext.id, port_id: port.id, description: `vmigrate ${tag}` } },
      what: `allocating a floating IP on ${externalNetwork} for port ${port.id}`,
    });
    await this.api.call('PUT', `/v2.0/floatingips/${created.body.floatingip.id}/tags/${encodeURIComponent(tag)}`, { what: 'tagging the floating IP' });
    return created.body.floatingip.floating_ip_address;
  }

  /** The port and any floating IP on it; gone already is fine. */
  async deletePort(id: string): Promise<void> {
    const { body } = await this.api.call<{ floatingips: Array<{ id: string }> }>('GET', '/v2.0/floatingips', { query: { port_id: id }, what: `listing floating IPs of port ${id}` });
    for (const f of body.floatingips) await this.api.call('DELETE', `/v2.0/floatingips/${f.id}`, { accept: [404], what: `deleting floating IP ${f.id}` });
    await this.api.call('DELETE', `/v2.0/ports/${id}`, { accept: [404], what: `deleting port ${id}` });
  }

  private async named<T extends Named>(collection: string, what: string, ref: string, extra: Record<string, string> = {}): Promise<T> {
    const key = collection.replace(/-/g, '_');
    const byId = await this.api.call<Record<string, T>>('GET', `/v2.0/${collection}/${encodeURIComponent(ref)}`, { accept: [404], what: `looking up ${what} ${ref}` });
    const single = key.slice(0, -1);
    if (byId.status === 200 && byId.body[single]) return byId.body[single];
    const { body } = await this.api.call<Record<string, T[]>>('GET', `/v2.0/${collection}`, { query: { name: ref, ...extra }, what: `looking up ${what} ${ref}` });
    const found = (body[key] ?? []).filter((x) => x.name === ref);
    if (found.length === 0) throw new TargetNotFoundError(`${what} '${ref}' does not exist in project ${this.api.project} (or is not shared with it)`);
    if (found.length > 1) throw new TargetNotFoundError(`${what} name '${ref}' is ambiguous (${found.length} match); use its id`);
    return found[0];
  }
}
