import { usageRecords, type QuotaSet } from './openstack-quotas';
import { TargetNotFoundError, TargetResourceError } from '../target-errors';
import type { Flavor, InstanceStatus } from '../target-provider';
import type { CinderVolumes } from './cinder-volumes';
import { waitFor, type OpenStackApi } from './openstack-api';

/** 2.52+: tags given at create (how a retried create finds its server); Zed serves up to 2.93. */
export const NOVA_MICROVERSION = 'compute 2.67';

export interface NovaServer {
  id: string;
  name: string;
  status: string;
  tags?: string[];
  metadata?: Record<string, string>;
  fault?: { message: string; details?: string; code?: number };
  'OS-EXT-AZ:availability_zone'?: string;
  flavor?: { original_name?: string; vcpus?: number; ram?: number; disk?: number };
  addresses?: Record<string, Array<{ addr: string; 'OS-EXT-IPS-MAC:mac_addr'?: string }>>;
}

export interface CreateServerRequest {
  name: string;
  flavorId: string;
  tag: string;
  ports: string[];
  /** Boot volume first. */
  volumeIds: string[];
  deleteOnTermination: boolean;
  availabilityZone?: string;
  keyName?: string;
  metadata: Record<string, string>;
}

export interface NovaFlavor extends Flavor {
  id: string;
}

/** Nova's status, in the product's terms; transitional states count as BUILD. */
export function instanceStatus(nova: string): InstanceStatus {
  if (nova === 'ACTIVE' || nova === 'SHUTOFF' || nova === 'ERROR') return nova;
  return 'BUILD';
}

export class NovaServers {
  constructor(
    readonly api: OpenStackApi,
    private readonly cinder: CinderVolumes,
    private readonly waitTimeoutMs: number,
  ) {}

  async listFlavors(): Promise<NovaFlavor[]> {
    const { body } = await this.api.call<{ flavors: Array<{ id: string; name: string; vcpus: number; ram: number; disk: number }> }>('GET', '/flavors/detail', {
      query: { is_public: 'None' },
      microversion: NOVA_MICROVERSION,
      what: `listing flavors in project ${this.api.project}`,
    });
    return body.flavors.map((f) => ({ id: f.id, name: f.name, vcpus: f.vcpus, ramMB: f.ram, diskGB: f.disk }));
  }

  async flavor(name: string): Promise<NovaFlavor> {
    const flavors = await this.listFlavors();
    const f = flavors.find((x) => x.name === name || x.id === name);
    if (!f) throw new TargetNotFoundError(`flavor '${name}' does not exist in project ${this.api.project}; available: ${flavors.map((x) => x.name).join(', ')}`);
    return f;
  }

  async checkKeyPair(name: string): Promise<void> {
    const { status } = await this.api.call('GET', `/os-keypairs/${encodeURIComponent(name)}`, { accept: [404], microversion: NOVA_MICROVERSION, what: `reading key pair ${name}` });
    if (status === 404) throw new TargetNotFoundError(`key pair '${name}' does not exist for the target's user`);
  }

  /** The project's compute quotas with what is in use. */
  async quotaUsage(): Promise<QuotaSet> {
    const projectId = await this.api.projectId();
    const { body } = await this.api.call<{ quota_set: Record<string, unknown> }>('GET', `/os-quota-sets/${encodeURIComponent(projectId)}/detail`, {
      microversion: NOVA_MICROVERSION,
      what: `reading the compute quotas of project ${this.api.project}`,
    });
    return usageRecords(body.quota_set);
  }

  /** Compute availability zones and whether each is available. */
  async listAvailabilityZones(): Promise<Array<{ name: string; available: boolean }>> {
    const { body } = await this.api.call<{ availabilityZoneInfo: Array<{ zoneName: string; zoneState: { available: boolean } }> }>('GET', '/os-availability-zone', {
      microversion: NOVA_MICROVERSION,
      what: 'listing availability zones',
    });
    return body.availabilityZoneInfo.map((z) => ({ name: z.zoneName, available: z.zoneState.available }));
  }

  async checkAvailabilityZone(name: string): Promise<void> {
    const zones = await this.listAvailabilityZones();
    if (!zones.some((z) => z.name === name)) throw new TargetNotFoundError(`compute availability zone '${name}' does not exist; available: ${zones.map((z) => z.name).join(', ')}`);
  }

  async findByTag(tag: string): Promise<NovaServer | undefined> {
    const { body } = await this.api.call<{ servers: NovaServer[] }>('GET', '/servers/detail', {
      query: { tags: tag },
      microversion: NOVA_MICROVERSION,
      what: `listing servers in project ${this.api.project}`,
    });
    return body.servers.find((s) => s.tags?.includes(tag) && s.status !== 'DELETED');
  }

  async get(id: string): Promise<NovaServer | undefined> {
    const { status, body } = await this.api.call<{ server: NovaServer }>('GET', `/servers/${id}`, { accept: [404], microversion: NOVA_MICROVERSION, what: `reading server ${id}` });
    return status === 404 || body.server.status === 'DELETED' ? undefined : body.server;
  }

  async create(req: CreateServerRequest): Promise<NovaServer> {
    const { body } = await this.api.call<{ server: { id: string } }>('POST', '/servers', {
      body: {
        server: {
          name: req.name,
          flavorRef: req.flavorId,
          networks: req.ports.length ? req.ports.map((port) => ({ port })) : 'none',
          block_device_mapping_v2: req.volumeIds.map((uuid, i) => ({
            uuid,
            source_type: 'volume',
            destination_type: 'volume',
            boot_index: i === 0 ? 0 : -1,
            delete_on_termination: req.deleteOnTermination,
          })),
          tags: [req.tag],
          metadata: req.metadata,
          ...(req.availabilityZone ? { availability_zone: req.availabilityZone } : {}),
          ...(req.keyName ? { key_name: req.keyName } : {}),
        },
      },
      microversion: NOVA_MICROVERSION,
      what: `creating server ${req.name} in project ${this.api.project}`,
    });
    return (await this.get(body.server.id)) ?? { id: body.server.id, name: req.name, status: 'BUILD' };
  }

  /** Until the server is in one of `statuses`; ERROR fails with the server's fault. */
  async waitForStatus(id: string, statuses: string[], signal?: AbortSignal): Promise<NovaServer> {
    let last: NovaServer | undefined;
    return waitFor(
      async () => {
        last = await this.get(id);
        if (!last) throw new TargetResourceError(`server ${id} disappeared while waiting for it to become ${statuses.join(' or ')}`);
        if (statuses.includes(last.status)) return last;
        if (last.status === 'ERROR') {
          throw new TargetResourceError(`server ${last.name} (${id}) went to ERROR: ${last.fault?.message ?? 'Nova recorded no fault'}`);
        }
        return undefined;
      },
      { timeoutMs: this.waitTimeoutMs, signal, timeoutMessage: () => `server ${id} is still ${last?.status} after ${this.waitTimeoutMs / 1000} s; expected ${statuses.join(' or ')}` },
    );
  }

  /** Power the server on or off (once it has settled) and wait until it is; one already there is left alone. */
  async powerTo(id: string, want: 'ACTIVE' | 'SHUTOFF', why: string): Promise<NovaServer> {
    const server = await this.waitForStatus(id, ['ACTIVE', 'SHUTOFF']);
    if (server.status === want) return server;
    await this.action(id, { [want === 'ACTIVE' ? 'os-start' : 'os-stop']: null }, `${want === 'ACTIVE' ? 'starting' : 'stopping'} server ${id} ${why}`);
    return this.waitForStatus(id, [want]);
  }

  async action(id: string, action: Record<string, unknown>, what: string): Promise<any> {
    return (await this.api.call('POST', `/servers/${id}/action`, { body: action, microversion: NOVA_MICROVERSION, what })).body;
  }

  async consoleOutput(id: string, lines = 200): Promise<string> {
    const body = await this.action(id, { 'os-getConsoleOutput': { length: lines } }, `reading the console of server ${id}`);
    return String(body?.output ?? '');
  }

  /** Delete and wait until it is gone; a server already gone is fine. */
  async delete(id: string): Promise<void> {
    const { status } = await this.api.call('DELETE', `/servers/${id}`, { accept: [404], microversion: NOVA_MICROVERSION, what: `deleting server ${id}` });
    if (status === 404) return;
    await waitFor(async () => ((await this.get(id)) ? undefined : true), {
      timeoutMs: this.waitTimeoutMs,
      timeoutMessage: () => `server ${id} is still there ${this.waitTimeoutMs / 1000} s after its delete`,
    });
  }

  /** Attach a volume to a server (the worker's own, in attach-to-worker mode) and wait until Cinder says in-use. */
  async attachVolume(serverId: string, volumeId: string): Promise<void> {
    const { status } = await this.api.call('GET', `/servers/${serverId}/os-volume_attachments/${volumeId}`, { accept: [404], microversion: NOVA_MICROVERSION, what: `reading attachment of ${volumeId}` });
    if (status === 404) {
      await this.api.call('POST', `/servers/${serverId}/os-volume_attachments`, {
        body: { volumeAttachment: { volumeId } },
        microversion: NOVA_MICROVERSION,
        what: `attaching volume ${volumeId} to server ${serverId}`,
      });
    }
    await this.cinder.waitForStatus(volumeId, ['in-use']);
  }

  async listVolumeAttachments(serverId: string): Promise<Array<{ volumeId: string; device?: string }>> {
    const { body } = await this.api.call<{ volumeAttachments: Array<{ volumeId: string; device?: string }> }>('GET', `/servers/${serverId}/os-volume_attachments`, {
      microversion: NOVA_MICROVERSION,
      what: `listing volumes attached to server ${serverId}`,
    });
    return body.volumeAttachments;
  }

  async detachVolume(serverId: string, volumeId: string): Promise<void> {
    await this.api.call('DELETE', `/servers/${serverId}/os-volume_attachments/${volumeId}`, { accept: [404], microversion: NOVA_MICROVERSION, what: `detaching volume ${volumeId} from server ${serverId}` });
    await this.cinder.waitForStatus(volumeId, ['available']);
  }
}
