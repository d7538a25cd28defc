import { rm } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { WorkerHost } from '../shared/task-queues';
import type { BootProperties, InstanceRef, InstanceSpec, NicSpec, ReleaseReport, TargetChoices, VolumeRef } from '../targets/target-provider';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';
import { planFirmware } from '../targets/firmware-plan';

export interface FinalizeInput {
  migrationId: string;
  /** The configured target (absent: the default one). */
  target?: string;
  project: string;
  instanceName: string;
  flavor: string;
  availabilityZone?: string;
  firmware: 'bios' | 'efi';
  /** The source VM's Secure Boot setting (absent in runs recorded before it was read: off). */
  secureBoot?: boolean;
  machineType?: InstanceSpec['machineType'];
  diskBus?: InstanceSpec['diskBus'];
  volumes: VolumeRef[];
  nics: NicSpec[];
  sourceVm: string;
  /** What inspection found, for the boot volume's image properties (os_type, os_distro). */
  guestOs?: { family: string; distro?: string };
  keyName?: string;
  deleteVolumesOnTermination?: boolean;
}

/** Finalize (Guest Fixes, inspection and the boot check are in guest-activities.ts). */
export function createTargetActivities(deps: ActivityDeps) {
  return {
    /**
     * Where a migration's volume work runs. A target whose volumes are files on the worker's host: this worker's host
     * and its task queue, so every later step finds the volumes (and the copy's digest log) where they are. A target
     * whose volumes any worker can attach: null (the shared queue, any worker).
     */
    async claimWorkerHost(input: { target?: string }): Promise<WorkerHost | null> {
      const provider = deps.targets.get(input.target);
      if (!provider.capabilities.volumesOnWorkerHost) return null;
      // Retryable: the retry may be taken by a worker of the shared queue that has a host queue.
      if (!deps.host) throw ApplicationFailure.retryable(`target '${provider.name}' keeps volumes on the worker's host, but this worker polls no host task queue`, 'NoWorkerHostQueue');
      return deps.host;
    },

    /** What a project may choose from in a target (flavors, volume types, networks, zones), for the API; reads only. */
    async listTargetChoices(input: { target?: string; project: string }): Promise<TargetChoices> {
      return failuresTranslated(() => deps.targets.get(input.target).listChoices(input.project));
    },

    /**
     * Finalize stage: the boot volume is marked bootable with metadata and the image properties it boots with, then
     * the instance is created from the volumes, with its ports (idempotent by migration).
     */
    async finalize(input: FinalizeInput): Promise<InstanceRef> {
      return failuresTranslated(async () => {
        const provider = deps.targets.get(input.target ?? input.volumes[0]?.target);
        const [boot] = input.volumes;
        const firmware = planFirmware({ firmware: input.firmware, secureBoot: input.secureBoot === true }, input.machineType);
        if (!firmware.ok) throw ApplicationFailure.nonRetryable(firmware.reason, 'PreflightError');
        const { secureBoot, machineType } = firmware;
        const diskBus = input.diskBus ?? 'virtio';
        const family = input.guestOs?.family;
        const properties: BootProperties = {
          firmware: input.firmware,
          ...(secureBoot ? { secureBoot } : {}),
          machineType,
          diskBus,
          // Emulated buses mean the guest may lack VirtIO drivers: give it a NIC it has drivers for too.
          nicModel: diskBus === 'virtio' || diskBus === 'scsi' ? 'virtio' : 'e1000',
          ...(family === 'linux' || family === 'windows' ? { osType: family } : {}),
          ...(input.guestOs?.distro ? { osDistro: input.guestOs.distro } : {}),
        };
        await provider.setVolumeBootable(boot, properties, { migrationId: input.migrationId, sourceVm: input.sourceVm });
        const instance = await provider.createInstance({
          project: input.project,
          name: input.instanceName,
          migrationId: input.migrationId,
          flavor: input.flavor,
          availabilityZone: input.availabilityZone,
          firmware: input.firmware,
          ...(secureBoot ? { secureBoot } : {}),
          machineType,
          diskBus,
          volumes: input.volumes,
          nics: input.nics,
          metadata: { migrationId: input.migrationId, sourceVm: input.sourceVm },
          ...(input.keyName ? { keyName: input.keyName } : {}),
          ...(input.deleteVolumesOnTermination ? { deleteVolumesOnTermination: true } : {}),
        });
        // Every disk is copied and verified: the resume digests on this worker are no longer needed.
        await rm(path.join(deps.config.workDir, input.migrationId), { recursive: true, force: true });
        return instance;
      });
    },

    /**
     * A failed or cancelled migration leaves nothing behind in the target: its ports, a half-built instance, and
     * (unless the migration asked to keep them) its volumes. Everything is found by its owner tag, so this also
     * removes what an attempt made before it crashed.
     */
    async releaseTarget(input: { target?: string; project: string; migrationId: string; keepVolumes: boolean }): Promise<ReleaseReport> {
      return failuresTranslated(() =>
        deps.targets.get(input.target).releaseMigration({ project: input.project, migrationId: input.migrationId, keepVolumes: input.keepVolumes }),
      );
    },
  };
}
