import { isCancellation, setCurrentDetails } from '@temporalio/workflow';
import type { BootCheckReport, GuestFixReport, GuestInspection, SourceInspection, SourceVmPlan } from '../activities';
import type { GuestOptions, TargetSpec } from '../shared/migration-input';
import type { InstanceRef, VolumeRef } from '../targets/target-provider';
import { rootCauseMessage } from './activity-proxies';
import type { guestActivities } from './guest-activity-proxies';

type GuestProxies = ReturnType<typeof guestActivities>;

/** Guest Fixes, shared by cold and warm migrations: virt-v2v-in-place on clones of the copied volumes. */
export function convertGuest(
  guest: GuestProxies,
  args: {
    migrationId: string;
    volumes: VolumeRef[];
    inspection: SourceInspection;
    guestInspection?: GuestInspection;
    plan: SourceVmPlan;
    target: TargetSpec;
    options?: GuestOptions;
  },
): Promise<GuestFixReport> {
  const { plan, inspection } = args;
  return guest.conversion.guestFix({
    migrationId: args.migrationId,
    volumes: args.volumes,
    sourceLayouts: plan.disks.map((d) => inspection.disks.find((x) => x.key === d.key)!.layout),
    guest: args.guestInspection,
    conversion: {
      convert: args.options?.convert ?? 'auto',
      firmware: inspection.firmware,
      diskBus: args.target.diskBus,
      machineType: args.target.machineType,
      virtioWinIso: args.options?.virtioWinIso,
      vm: { name: plan.name, memoryMB: plan.memoryMB, vcpus: plan.numCPU, nicMacs: plan.nics.map((n) => n.sourceMac) },
    },
  });
}

/**
 * The optional boot check after Finalize. A guest that does not boot is recorded (with the console's tail) and
 * reported as a warning, not a failed migration: the instance exists and an operator decides. If the check itself
 * cannot run, that is recorded the same way.
 */
export async function checkBoot(
  validation: GuestProxies['validation'],
  instance: InstanceRef,
  option: boolean | { timeoutSeconds: number },
): Promise<BootCheckReport | { passed: false; reason: string }> {
  setCurrentDetails(`**Finalize** — boot check of instance ${instance.project}/${instance.name}`);
  try {
    return await validation.bootCheck({
      instance,
      project: instance.project,
      instanceName: instance.name,
      timeoutSeconds: typeof option === 'object' ? option.timeoutSeconds : undefined,
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    return { passed: false, reason: `the boot check could not run: ${rootCauseMessage(err)}` };
  }
}
