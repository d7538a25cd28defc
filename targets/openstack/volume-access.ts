import { access } from 'node:fs/promises';
import path from 'node:path';
import { TargetRequestError } from '../target-errors';
import type { CinderAttachments } from './cinder-attachments';
import type { CinderVolume } from './cinder-volumes';
import type { NfsShareMounts } from './nfs-share-mounts';
import { waitFor } from './openstack-api';
import type { NovaServers } from './nova-servers';

/** A Cinder volume reachable from this worker as a file or block device, until `release()`. */
export interface AttachedVolume {
  path: string;
  format: 'raw' | 'qcow2';
  release(): Promise<void>;
}

/** How a worker reaches a volume's bytes: the configuration's `volumeAccess.mode`. */
export interface VolumeAccess {
  readonly mode: 'cinder-attachment' | 'attach-to-worker';
  attach(volume: CinderVolume): Promise<AttachedVolume>;
}

/** The transports the cinder-attachment mode can connect (os-brick's connector names). */
const SUPPORTED = ['nfs'];

/**
 * cinder-attachment: attach the volume to this host with Cinder's attachments API, then connect the transport its
 * answer names. NFS: mount the export and open `volume-<id>` on it, as os-brick's NFS connector does.
 */
export class CinderAttachmentAccess implements VolumeAccess {
  readonly mode = 'cinder-attachment';

  constructor(
    private readonly attachments: CinderAttachments,
    private readonly mounts: NfsShareMounts,
  ) {}

  async attach(volume: CinderVolume): Promise<AttachedVolume> {
    const att = await this.attachments.attachToHost(volume.id);
    try {
      const { driver_volume_type: type, data } = att.connection;
      if (type !== 'nfs') {
        throw new TargetRequestError(
          `volume ${volume.id} is served over '${type}'; this worker's cinder-attachment mode connects ${SUPPORTED.join(', ')} only. ` +
            "Run the worker as a server in the cloud with volumeAccess.mode 'attach-to-worker', or use an NFS-backed volume type",
        );
      }
      const exportPath = String(data.export ?? '');
      const name = String(data.name ?? '');
      if (!exportPath || !name || name.includes('/')) throw new TargetRequestError(`Cinder's NFS connection_info for volume ${volume.id} lacks export or name: ${JSON.stringify(data)}`);
      const format = data.format === 'qcow2' ? 'qcow2' : 'raw';
      const mountPoint = await this.mounts.acquire(exportPath, typeof data.options === 'string' ? data.options : undefined);
      const file = path.join(mountPoint, name);
      try {
        await access(file);
      } catch (err) {
        await this.mounts.release(exportPath);
        throw new Error(`volume ${volume.id}: ${file} is not on the mounted share ${exportPath}: ${(err as Error).message}`);
      }
      let released = false;
      return {
        path: file,
        format,
        release: async () => {
          if (released) return;
          released = true;
          await this.mounts.release(exportPath);
          await this.attachments.detach(att.id);
        },
      };
    } catch (err) {
      await this.attachments.detach(att.id).catch(() => undefined);
      throw err;
    }
  }
}

/**
 * attach-to-worker: the worker is a server in the same cloud; Nova attaches the volume to it and the guest kernel
 * shows it as /dev/disk/by-id/virtio-<first 20 characters of the volume id> (the serial Nova gives virtio disks).
 */
export class WorkerServerAccess implements VolumeAccess {
  readonly mode = 'attach-to-worker';

  constructor(
    private readonly nova: NovaServers,
    private readonly workerServerId: string,
    private readonly opts: { waitTimeoutMs: number; devicePath?: (volumeId: string) => string },
  ) {}

  devicePath(volumeId: string): string {
    return this.opts.devicePath?.(volumeId) ?? `/dev/disk/by-id/virtio-${volumeId.slice(0, 20)}`;
  }

  async attach(volume: CinderVolume): Promise<AttachedVolume> {
    await this.nova.attachVolume(this.workerServerId, volume.id);
    const device = this.devicePath(volume.id);
    try {
      await waitFor(async () => ((await access(device).then(() => true, () => false)) ? true : undefined), {
        timeoutMs: this.opts.waitTimeoutMs,
        timeoutMessage: () => `volume ${volume.id} is attached to worker server ${this.workerServerId} but ${device} did not appear`,
      });
    } catch (err) {
      await this.nova.detachVolume(this.workerServerId, volume.id).catch(() => undefined);
      throw err;
    }
    let released = false;
    return {
      path: device,
      format: 'raw',
      release: async () => {
        if (released) return;
        released = true;
        await this.nova.detachVolume(this.workerServerId, volume.id);
      },
    };
  }
}
