import os from 'node:os';
import { TargetRequestError } from '../target-errors';
import { CINDER_MICROVERSION, type CinderVolumes } from './cinder-volumes';

/**
 * Cinder's attachments API (3.27+): attach a volume to this host — not to a server — with the host's connector, and
 * get back how to reach it (`connection_info`). A host attachment has no instance; that is how vmigrate tells its
 * own attachments from Nova's.
 */

export interface ConnectionInfo {
  driver_volume_type: string;
  /** Driver-specific: nfs gives { export, name, options, format }. */
  data: Record<string, unknown>;
}

export interface HostAttachment {
  id: string;
  connection: ConnectionInfo;
}

interface AttachmentView {
  id: string;
  status: string;
  instance: string | null;
  volume_id: string;
  connection_info?: Record<string, unknown> | null;
}

/** This host, as os-brick describes one: the fields a driver's initialize_connection reads. */
export function hostConnector(): Record<string, unknown> {
  return { platform: os.arch() === 'x64' ? 'x86_64' : os.arch(), os_type: os.platform(), host: os.hostname(), ip: connectorIp(), multipath: false, do_local_attach: false };
}

function connectorIp(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return '127.0.0.1';
}

/** Cinder has returned connection_info both flat and as { driver_volume_type, data }; accept either. */
export function normalizeConnectionInfo(raw: Record<string, unknown>): ConnectionInfo {
  const type = raw.driver_volume_type;
  if (typeof type !== 'string') throw new TargetRequestError(`Cinder returned connection_info without a driver_volume_type: ${JSON.stringify(raw).slice(0, 300)}`);
  const data = raw.data && typeof raw.data === 'object' ? (raw.data as Record<string, unknown>) : Object.fromEntries(Object.entries(raw).filter(([k]) => k !== 'driver_volume_type'));
  return { driver_volume_type: type, data };
}

export class CinderAttachments {
  constructor(private readonly volumes: CinderVolumes) {}

  /** Attach to this host, read-write; stale host attachments of ours (a worker that died) are removed first. */
  async attachToHost(volumeId: string): Promise<HostAttachment> {
    await this.removeHostAttachments(volumeId);
    const api = this.volumes.api;
    const { body } = await api.call<{ attachment: AttachmentView }>('POST', '/attachments', {
      body: { attachment: { volume_uuid: volumeId, connector: hostConnector(), mode: 'rw' } },
      microversion: CINDER_MICROVERSION,
      what: `attaching volume ${volumeId} to this host`,
    });
    const att = body.attachment;
    if (!att.connection_info) {
      await this.detach(att.id);
      throw new TargetRequestError(`Cinder attached volume ${volumeId} without connection_info`);
    }
    const connection = normalizeConnectionInfo(att.connection_info);
    await api.call('POST', `/attachments/${att.id}/action`, { body: { 'os-complete': null }, microversion: CINDER_MICROVERSION, what: `completing attachment ${att.id}` });
    return { id: att.id, connection };
  }

  async detach(attachmentId: string): Promise<void> {
    await this.volumes.api.call('DELETE', `/attachments/${attachmentId}`, { accept: [404], microversion: CINDER_MICROVERSION, what: `detaching attachment ${attachmentId}` });
  }

  /** Attachments of the volume to hosts (no instance): only vmigrate makes those on its volumes. */
  async removeHostAttachments(volumeId: string): Promise<number> {
    const { body } = await this.volumes.api.call<{ attachments: AttachmentView[] }>('GET', '/attachments/detail', {
      query: { volume_id: volumeId },
      microversion: CINDER_MICROVERSION,
      what: `listing attachments of volume ${volumeId}`,
    });
    const ours = body.attachments.filter((a) => a.volume_id === volumeId && !a.instance);
    for (const a of ours) await this.detach(a.id);
    return ours.length;
  }
}
