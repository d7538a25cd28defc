import type { OpenStackApi } from './openstack-api';

/**
 * Nova's live migration, as an operator with the admin role drives it: compute services (up, enabled, disabled with a
 * reason), hypervisors, where a server runs, `os-migrateLive`, the migration's progress while it runs, its record
 * once it ended, and what its instance action says when it failed. Since microversion 2.34 the checks before a live
 * migration run in the background: a refusal is not the POST's answer but the migration's `error` status and its
 * instance action's event details (2.84).
 */
export const NOVA_LIVE_MICROVERSION = 'compute 2.84';
/** Hypervisors' capacity fields (vCPUs, memory) were removed at 2.88; capacity is read just below. */
const HYPERVISOR_MICROVERSION = 'compute 2.87';

export interface ComputeService {
  id: string;
  host: string;
  zone: string;
  enabled: boolean;
  up: boolean;
  forcedDown: boolean;
  disabledReason?: string;
}

export interface Hypervisor {
  id: string;
  hostname: string;
  /** The compute service's host (what os-migrateLive names). */
  host: string;
  type: string;
  version: number;
  vcpus: number;
  vcpusUsed: number;
  memoryMB: number;
  memoryMBUsed: number;
  cpuInfo?: unknown;
}

export interface ServerPlacement {
  id: string;
  name: string;
  status: string;
  taskState?: string;
  host?: string;
  zone?: string;
  flavor: { vcpus: number; ramMB: number; diskGB: number };
  volumesAttached: string[];
  /** Booted from a volume (no image): its root is on shared storage. */
  bootFromVolume: boolean;
}

export interface LiveMigrationRecord {
  id: number;
  uuid?: string;
  /** queued, preparing, running, post-migrating, completed, failed, error, cancelled. */
  status: string;
  sourceCompute?: string;
  destCompute?: string;
  memory?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  disk?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  createdAt?: string;
  updatedAt?: string;
  /** What the hypervisor measured, where it is asked directly (libvirt): the guest's pause, the whole run, the bytes sent. */
  downtimeMs?: number;
  durationMs?: number;
  transferredBytes?: number;
  /** Completed in post-copy (libvirt): the guest ran on the destination while its last pages were fetched. */
  postCopy?: boolean;
}

/** Ended one way or the other: completed, or it failed and the server stays where it was. */
export const ENDED_MIGRATION_STATUSES = ['completed', 'failed', 'error', 'cancelled', 'done'];

function bytes(total?: number | null, processed?: number | null, remaining?: number | null) {
  return total === undefined || total === null ? undefined : { totalBytes: total, processedBytes: processed ?? 0, remainingBytes: remaining ?? 0 };
}

function migrationOf(m: Record<string, any>): LiveMigrationRecord {
  return {
    id: m.id,
    ...(m.uuid ? { uuid: m.uuid } : {}),
    status: m.status,
    sourceCompute: m.source_compute ?? undefined,
    destCompute: m.dest_compute ?? undefined,
    memory: bytes(m.memory_total_bytes, m.memory_processed_bytes, m.memory_remaining_bytes),
    disk: bytes(m.disk_total_bytes, m.disk_processed_bytes, m.disk_remaining_bytes),
    createdAt: m.created_at ?? undefined,
    updatedAt: m.updated_at ?? undefined,
  };
}

export class NovaLiveMigrations {
  constructor(readonly api: OpenStackApi) {}

  async computeServices(): Promise<ComputeService[]> {
    const { body } = await this.api.call<{ services: Array<Record<string, any>> }>('GET', '/os-services', {
      query: { binary: 'nova-compute' },
      microversion: NOVA_LIVE_MICROVERSION,
      what: 'listing the compute services',
    });
    return body.services.map((s) => ({
      id: String(s.id),
      host: s.host,
      zone: s.zone,
      enabled: s.status === 'enabled',
      up: s.state === 'up',
      forcedDown: s.forced_down === true,
      ...(s.disabled_reason ? { disabledReason: s.disabled_reason } : {}),
    }));
  }

  /** Disable a compute service with a reason (the scheduler then places nothing new on it), or enable it again. */
  async setComputeService(serviceId: string, change: { enabled: true } | { enabled: false; reason: string }): Promise<ComputeService> {
    const { body } = await this.api.call<{ service: Record<string, any> }>('PUT', `/os-services/${encodeURIComponent(serviceId)}`, {
      body: change.enabled ? { status: 'enabled' } : { status: 'disabled', disabled_reason: change.reason },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `${change.enabled ? 'enabling' : 'disabling'} compute service ${serviceId}`,
    });
    const s = body.service;
    return { id: String(s.id), host: s.host, zone: s.zone, enabled: s.status === 'enabled', up: s.state === 'up', forcedDown: s.forced_down === true, ...(s.disabled_reason ? { disabledReason: s.disabled_reason } : {}) };
  }

  async hypervisors(): Promise<Hypervisor[]> {
    const { body } = await this.api.call<{ hypervisors: Array<Record<string, any>> }>('GET', '/os-hypervisors/detail', { microversion: HYPERVISOR_MICROVERSION, what: 'listing the hypervisors' });
    return body.hypervisors.map((h) => {
      let cpuInfo: unknown = h.cpu_info;
      try {
        cpuInfo = typeof h.cpu_info === 'string' ? JSON.parse(h.cpu_info) : h.cpu_info;
      } catch {
        // Some drivers report a plain string.
      }
      return {
        id: String(h.id),
        hostname: h.hypervisor_hostname,
        host: h.service?.host ?? h.hypervisor_hostname,
        type: h.hypervisor_type,
        version: h.hypervisor_version,
        vcpus: h.vcpus,
        vcpusUsed: h.vcpus_used,
        memoryMB: h.memory_mb,
        memoryMBUsed: h.memory_mb_used,
        cpuInfo,
      };
    });
  }

  async server(serverId: string): Promise<ServerPlacement> {
    const { body } = await this.api.call<{ server: Record<string, any> }>('GET', `/servers/${encodeURIComponent(serverId)}`, { microversion: NOVA_LIVE_MICROVERSION, what: `reading server ${serverId}` });
    return placementOf(body.server);
  }

  /** Every project's servers on a compute host (admin). */
  async serversOnHost(host: string): Promise<ServerPlacement[]> {
    const { body } = await this.api.call<{ servers: Array<Record<string, any>> }>('GET', '/servers/detail', {
      query: { all_tenants: 'true', host, limit: 1000 },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `listing the servers on host ${host}`,
    });
    return body.servers.map(placementOf);
  }

  /** Starts the live migration; answers the request id its instance action is filed under. */
  async liveMigrate(serverId: string, opts: { host?: string; blockMigration: 'auto' | boolean }): Promise<string | undefined> {
    const res = await this.api.call('POST', `/servers/${encodeURIComponent(serverId)}/action`, {
      body: { 'os-migrateLive': { host: opts.host ?? null, block_migration: opts.blockMigration } },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `live-migrating server ${serverId}${opts.host ? ` to ${opts.host}` : ''}`,
    });
    return res.requestId;
  }

  /** Live migrations of the server that are still under way, with Nova's progress counters. */
  async inProgress(serverId: string): Promise<LiveMigrationRecord[]> {
    const { body } = await this.api.call<{ migrations: Array<Record<string, any>> }>('GET', `/servers/${encodeURIComponent(serverId)}/migrations`, {
      microversion: NOVA_LIVE_MICROVERSION,
      what: `reading the migrations in progress of server ${serverId}`,
    });
    return body.migrations.map(migrationOf);
  }

  /** Every live migration of the server, newest first. */
  async liveMigrations(serverId: string): Promise<LiveMigrationRecord[]> {
    const { body } = await this.api.call<{ migrations: Array<Record<string, any>> }>('GET', '/os-migrations', {
      query: { instance_uuid: serverId, migration_type: 'live-migration' },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `listing the live migrations of server ${serverId}`,
    });
    return body.migrations.map(migrationOf).sort((a, b) => b.id - a.id);
  }

  /** The request id of the server's newest instance action of that kind (`live-migration`, `migrate`), if any. */
  async latestActionRequest(serverId: string, action: string): Promise<string | undefined> {
    const { body } = await this.api.call<{ instanceActions: Array<{ action: string; request_id: string; start_time: string }> }>(
      'GET',
      `/servers/${encodeURIComponent(serverId)}/os-instance-actions`,
      { microversion: NOVA_LIVE_MICROVERSION, what: `listing the instance actions of server ${serverId}` },
    );
    // Nova lists them newest first; sorted anyway, as its API reference does not promise an order.
    return body.instanceActions
      .filter((a) => a.action === action)
      .sort((a, b) => b.start_time.localeCompare(a.start_time))[0]?.request_id;
  }

  /** What went wrong, in Nova's words: the details of the failed events of the request's instance action. */
  async failureOf(serverId: string, requestId: string): Promise<string | undefined> {
    const { status, body } = await this.api.call<{ instanceAction: { message?: string | null; events?: Array<{ event: string; result?: string | null; details?: string | null }> } }>(
      'GET',
      `/servers/${encodeURIComponent(serverId)}/os-instance-actions/${encodeURIComponent(requestId)}`,
      { accept: [404], microversion: NOVA_LIVE_MICROVERSION, what: `reading instance action ${requestId} of server ${serverId}` },
    );
    if (status === 404) return undefined;
    const failed = (body.instanceAction.events ?? []).filter((e) => e.result === 'Error');
    const details = failed.map((e) => e.details).filter((d): d is string => !!d);
    return details.join('; ') || body.instanceAction.message || (failed.length ? `${failed.map((e) => e.event).join(', ')} failed` : undefined);
  }

  /**
   * Cold migration of a stopped server (a drain moves those this way: live migration needs a running guest). The
   * scheduler picks the destination unless `host` names one; the server waits in VERIFY_RESIZE for `confirmResize`.
   */
  async coldMigrate(serverId: string, opts: { host?: string } = {}): Promise<string | undefined> {
    const res = await this.api.call('POST', `/servers/${encodeURIComponent(serverId)}/action`, {
      body: { migrate: opts.host ? { host: opts.host } : null },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `cold-migrating server ${serverId}${opts.host ? ` to ${opts.host}` : ''}`,
    });
    return res.requestId;
  }

  /** Ends a cold migration in VERIFY_RESIZE: the source's copy is removed and the server stays where it landed. */
  async confirmResize(serverId: string): Promise<void> {
    await this.api.call('POST', `/servers/${encodeURIComponent(serverId)}/action`, {
      body: { confirmResize: null },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `confirming the cold migration of server ${serverId}`,
    });
  }

  /** Every cold migration of the server, newest first. */
  async coldMigrations(serverId: string): Promise<LiveMigrationRecord[]> {
    const { body } = await this.api.call<{ migrations: Array<Record<string, any>> }>('GET', '/os-migrations', {
      query: { instance_uuid: serverId, migration_type: 'migration' },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `listing the cold migrations of server ${serverId}`,
    });
    return body.migrations.map(migrationOf).sort((a, b) => b.id - a.id);
  }

  /** Pause the guest so the last memory copy completes (a migration that does not converge). */
  async forceComplete(serverId: string, migrationId: number): Promise<void> {
    await this.api.call('POST', `/servers/${encodeURIComponent(serverId)}/migrations/${migrationId}/action`, {
      body: { force_complete: null },
      microversion: NOVA_LIVE_MICROVERSION,
      what: `forcing live migration ${migrationId} of server ${serverId} to complete`,
    });
  }

  /** Abort it: the server stays ACTIVE where it was. */
  async abort(serverId: string, migrationId: number): Promise<void> {
    await this.api.call('DELETE', `/servers/${encodeURIComponent(serverId)}/migrations/${migrationId}`, {
      accept: [404],
      microversion: NOVA_LIVE_MICROVERSION,
      what: `aborting live migration ${migrationId} of server ${serverId}`,
    });
  }
}

function placementOf(s: Record<string, any>): ServerPlacement {
  return {
    id: s.id,
    name: s.name,
    status: s.status,
    ...(s['OS-EXT-STS:task_state'] ? { taskState: s['OS-EXT-STS:task_state'] } : {}),
    ...(s['OS-EXT-SRV-ATTR:host'] ? { host: s['OS-EXT-SRV-ATTR:host'] } : {}),
    ...(s['OS-EXT-AZ:availability_zone'] ? { zone: s['OS-EXT-AZ:availability_zone'] } : {}),
    flavor: { vcpus: s.flavor?.vcpus ?? 0, ramMB: s.flavor?.ram ?? 0, diskGB: s.flavor?.disk ?? 0 },
    volumesAttached: (s['os-extended-volumes:volumes_attached'] ?? []).map((v: { id: string }) => v.id),
    bootFromVolume: !s.image || !s.image.id,
  };
}
