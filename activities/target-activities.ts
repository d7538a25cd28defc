import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { inspectDiskLayout, type DiskLayout } from '../guest/disk-layout';
import type { InstanceRef, InstanceSpec, NicSpec, VolumeRef } from '../target/target-driver';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';

export interface GuestFixReport {
  /** Whether the guest was converted (VirtIO drivers, boot loader, VMware tools removed). */
  converted: boolean;
  /** Why not, when it was not. */
  reason?: string;
  volumes: Array<{ volume: string; layout: DiskLayout; matchesSource: boolean }>;
}

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

const CONVERSION_NOT_CONFIGURED =
  'guest conversion is not configured in this release: the disks were copied as-is (no VirtIO drivers injected, ' +
  'boot loader and VMware tools untouched); the layout was inspected and checked against the source';

export function createTargetActivities(deps: ActivityDeps) {
  return {
    /**
     * Guest Fixes stage. Conversion (virt-v2v-in-place) is not part of this release, and this says so rather than
     * pretending: it inspects what landed on each target volume and checks it against the source's layout.
     */
    async guestFix(input: { volumes: VolumeRef[]; sourceLayouts: DiskLayout[] }): Promise<GuestFixReport> {
      return failuresTranslated(async () => {
        const volumes: GuestFixReport['volumes'] = [];
        for (const [i, ref] of input.volumes.entries()) {
          Context.current().heartbeat({ volume: ref.name });
          const vol = await deps.target.openVolume(ref);
          try {
            const layout = await inspectDiskLayout((off, len) => vol.read(off, len), vol.size);
            const matchesSource = JSON.stringify(layout) === JSON.stringify(input.sourceLayouts[i]);
            if (!matchesSource) {
              // Same bytes must give the same layout; a difference means the copy is wrong, and retrying won't help.
              throw Object.assign(new Error(`target volume ${ref.name} does not have the source disk's layout`), {
                name: 'VerificationError',
              });
            }
            volumes.push({ volume: ref.name, layout, matchesSource });
          } finally {
            await vol.close();
          }
        }
        return { converted: false, reason: CONVERSION_NOT_CONFIGURED, volumes };
      });
    },

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
