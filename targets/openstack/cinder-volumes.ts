import { usageRecords, type QuotaSet } from './openstack-quotas';
import { TargetNotFoundError, TargetResourceError } from '../target-errors';
import type { VolumeOwner, VolumeSpec } from '../target-provider';
import { waitFor, type OpenStackApi } from './openstack-api';

/**
 * Cinder v3 volumes of one project. Every volume vmigrate makes carries its owner in its metadata
 * (`vmigrate.migration`, `vmigrate.disk`) and is found again by it: names are not unique in Cinder, and a create
 * whose answer was lost must not become a second volume when it is retried.
 */

export const META_MIGRATION = 'vmigrate.migration';
export const META_DISK = 'vmigrate.disk';
/** The source disk's exact size: Cinder sizes are whole GiB. */
export const META_SIZE_BYTES = 'vmigrate.size_bytes';

const GiB = 1024 ** 3;
/** 3.44 has attachments with os-complete; 3.54 adds the attachment mode; Zed serves up to 3.70. */
export const CINDER_MICROVERSION = 'volume 3.54';

export interface CinderVolume {
  id: string;
  name: string | null;
  size: number;
  status: string;
  volume_type: string | null;
  availability_zone?: string;
  bootable?: string;
  metadata: Record<string, string>;
  volume_image_metadata?: Record<string, string>;
  attachments?: Array<{ attachment_id: string; server_id?: string }>;
}

/** A provider's volume spec (the project is the API's), plus the volume to clone, if any. */
export interface CreateVolumeRequest extends Omit<VolumeSpec, 'project'> {
  sourceVolumeId?: string;
}

export function ownerMetadata(owner: VolumeOwner, sizeBytes: number): Record<string, string> {
  return { [META_MIGRATION]: owner.migrationId, [META_DISK]: owner.disk, [META_SIZE_BYTES]: String(sizeBytes) };
}

export function isOwnedBy(v: CinderVolume, owner: VolumeOwner): boolean {
  return v.metadata?.[META_MIGRATION] === owner.migrationId && v.metadata?.[META_DISK] === owner.disk;
}

const GONE = new Set(['deleting', 'error_deleting']);

export class CinderVolumes {
  constructor(
    readonly api: OpenStackApi,
    private readonly waitTimeoutMs: number,
  ) {}

  /** Volumes whose metadata includes all of `match` (the filter runs in Cinder; the answer is checked here too). */
  async listByMetadata(match: Record<string, string>): Promise<CinderVolume[]> {
    const { body } = await this.api.call<{ volumes: CinderVolume[] }>('GET', '/volumes/detail', {
      query: { metadata: JSON.stringify(match), limit: 1000 },
      microversion: CINDER_MICROVERSION,
      what: `listing volumes in project ${this.api.project}`,
    });
    return body.volumes.filter((v) => Object.entries(match).every(([k, val]) => v.metadata?.[k] === val) && !GONE.has(v.status));
  }

  async findOwned(owner: VolumeOwner): Promise<CinderVolume | undefined> {
    const found = (await this.listByMetadata({ [META_MIGRATION]: owner.migrationId, [META_DISK]: owner.disk })).filter((v) => isOwnedBy(v, owner));
    if (found.length > 1) {
      // Only a create racing itself makes two; keep the oldest answer stable by id order, never pick at random.
      found.sort((a, b) => (a.id < b.id ? -1 : 1));
    }
    return found[0];
  }

  async get(id: string): Promise<CinderVolume | undefined> {
    const { status, body } = await this.api.call<{ volume: CinderVolume }>('GET', `/volumes/${id}`, {
      accept: [404],
      microversion: CINDER_MICROVERSION,
      what: `reading volume ${id}`,
    });
    return status === 404 ? undefined : body.volume;
  }

  async create(req: CreateVolumeRequest): Promise<CinderVolume> {
    const { body } = await this.api.call<{ volume: CinderVolume }>('POST', '/volumes', {
      body: {
        volume: {
          name: req.name,
          size: Math.max(1, Math.ceil(req.sizeBytes / GiB)),
          volume_type: req.volumeType,
          ...(req.availabilityZone ? { availability_zone: req.availabilityZone } : {}),
          ...(req.sourceVolumeId ? { source_volid: req.sourceVolumeId } : {}),
          metadata: { ...(req.metadata ?? {}), ...ownerMetadata(req.owner, req.sizeBytes) },
        },
      },
      microversion: CINDER_MICROVERSION,
      what: `creating volume ${req.name} in project ${this.api.project}`,
    });
    return body.volume;
  }

  /** Until the volume is in one of `statuses`; `error` fails with the reason Cinder recorded for it. */
  async waitForStatus(id: string, statuses: string[], signal?: AbortSignal): Promise<CinderVolume> {
    let last: CinderVolume | undefined;
    return waitFor(
      async () => {
        last = await this.get(id);
        if (!last) throw new TargetResourceError(`volume ${id} disappeared while waiting for it to become ${statuses.join(' or ')}`);
        if (statuses.includes(last.status)) return last;
        if (last.status.startsWith('error')) {
          throw new TargetResourceError(`volume ${last.name ?? id} (${id}) went to ${last.status}: ${await this.faultOf(id)}`);
        }
        return undefined;
      },
      { timeoutMs: this.waitTimeoutMs, signal, timeoutMessage: () => `volume ${id} is still ${last?.status} after ${this.waitTimeoutMs / 1000} s; expected ${statuses.join(' or ')}` },
    );
  }

  /** What Cinder told the user about a resource (its user messages, 3.3+), newest first. */
  async faultOf(id: string): Promise<string> {
    const { body } = await this.api.call<{ messages: Array<{ user_message: string; created_at: string }> }>('GET', '/messages', {
      query: { resource_uuid: id },
      microversion: CINDER_MICROVERSION,
      accept: [404],
      what: `reading the messages of volume ${id}`,
    });
    const msgs = (body?.messages ?? []).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    return msgs.length ? msgs.map((m) => m.user_message).join('; ') : 'Cinder recorded no reason (see the cinder-volume log)';
  }

  async action(id: string, action: Record<string, unknown>, what: string): Promise<void> {
    await this.api.call('POST', `/volumes/${id}/action`, { body: action, microversion: CINDER_MICROVERSION, what });
  }

  async setMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    await this.api.call('POST', `/volumes/${id}/metadata`, { body: { metadata }, microversion: CINDER_MICROVERSION, what: `setting metadata of volume ${id}` });
  }

  /** Delete and wait until it is gone; a volume already gone is fine. */
  async delete(id: string, signal?: AbortSignal): Promise<void> {
    const { status } = await this.api.call('DELETE', `/volumes/${id}`, { accept: [404], microversion: CINDER_MICROVERSION, what: `deleting volume ${id}` });
    if (status === 404) return;
    await waitFor(
      async () => {
        const v = await this.get(id);
        if (!v) return true;
        if (v.status === 'error_deleting') throw new TargetResourceError(`volume ${id} could not be deleted: ${await this.faultOf(id)}`);
        return undefined;
      },
      { timeoutMs: this.waitTimeoutMs, signal, timeoutMessage: () => `volume ${id} is still being deleted after ${this.waitTimeoutMs / 1000} s` },
    );
  }

  /** Block storage availability zones (names). */
  async listAvailabilityZones(): Promise<string[]> {
    const { body } = await this.api.call<{ availabilityZoneInfo: Array<{ zoneName: string }> }>('GET', '/os-availability-zone', {
      microversion: CINDER_MICROVERSION,
      what: 'listing block storage availability zones',
    });
    return body.availabilityZoneInfo.map((z) => z.zoneName);
  }

  async checkAvailabilityZone(name: string): Promise<void> {
    const zones = await this.listAvailabilityZones();
    if (!zones.includes(name)) {
      throw new TargetNotFoundError(`block storage availability zone '${name}' does not exist; available: ${zones.join(', ') || '(none)'}`);
    }
  }

  /** The project's block storage quotas (also per volume type) with what is in use. */
  async quotaUsage(): Promise<QuotaSet> {
    const projectId = await this.api.projectId();
    const { body } = await this.api.call<{ quota_set: Record<string, unknown> }>('GET', `/os-quota-sets/${encodeURIComponent(projectId)}`, {
      query: { usage: 'True' },
      microversion: CINDER_MICROVERSION,
      what: `reading the block storage quotas of project ${this.api.project}`,
    });
    return usageRecords(body.quota_set);
  }

  /** The volume types the project may use. */
  async listVolumeTypes(): Promise<Array<{ id: string; name: string; description?: string }>> {
    const { body } = await this.api.call<{ volume_types: Array<{ id: string; name: string; description?: string | null }> }>('GET', '/types', {
      microversion: CINDER_MICROVERSION,
      what: `listing volume types in project ${this.api.project}`,
    });
    return body.volume_types.map((t) => ({ id: t.id, name: t.name, ...(t.description ? { description: t.description } : {}) }));
  }

  async checkVolumeType(name: string): Promise<void> {
    const types = await this.listVolumeTypes();
    if (!types.some((t) => t.name === name || t.id === name)) {
      throw new TargetNotFoundError(`volume type '${name}' does not exist; available: ${types.map((t) => t.name).join(', ') || '(none)'}`);
    }
  }
}
