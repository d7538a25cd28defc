import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { InstanceRef, InstanceSpec, NicSpec, VolumeRef } from '../target/target-driver';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';

export interface FinalizeInput {
  migrationId: string;
  project: string;
  instanceName: string;
  flavor: string;
  availabilityZone?: string;
  firmware: 'bios' | 'efi';
  machineType?: InstanceSpec['machineType'];
  diskBus?: InstanceSpec['diskBus'];
  volumes: VolumeRef[];
  nics: NicSpec[];
  sourceVm: string;
}

/** Finalize (Guest Fixes, inspection and the boot check are in guest-activities.ts). */
export function createTargetActivities(deps: ActivityDeps) {
  return {
    /** Finalize stage: boot volume marked bootable with metadata, then the target instance is created (idempotent). */
    async finalize(input: FinalizeInput): Promise<InstanceRef> {
      return failuresTranslated(async () => {
        const [boot] = input.volumes;
        await deps.target.setVolumeBootable(boot, { migrationId: input.migrationId, sourceVm: input.sourceVm });
        const instance = await deps.target.createInstance({
          project: input.project,
          name: input.instanceName,
          flavor: input.flavor,
          availabilityZone: input.availabilityZone,
          firmware: input.firmware,
          machineType: input.machineType ?? (input.firmware === 'efi' ? 'pc-q35' : 'pc-i440fx'),
          diskBus: input.diskBus ?? 'virtio',
          volumes: input.volumes,
          nics: input.nics,
          metadata: { migrationId: input.migrationId, sourceVm: input.sourceVm },
        });
        // Every disk is copied and verified: the resume digests on this worker are no longer needed.
        await rm(path.join(deps.config.workDir, input.migrationId), { recursive: true, force: true });
        return instance;
      });
    },
  };
}
