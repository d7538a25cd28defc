import type { FinalizeInput, GuestInspection, SourceVmPlan } from '../activities';
import type { GuestOptions, TargetSpec } from '../shared/migration-input';
import type { InstanceRef, VolumeRef } from '../targets/target-provider';
import type { MigrationValidation } from './cold-migration-state';
import type { guestActivities } from './guest-activity-proxies';
import { checkBoot } from './guest-steps';

/** Finalize's input, the same for every kind of source: the instance from the plan, the target and the boot volumes. */
export function finalizeInputOf(args: {
  migrationId: string;
  target: TargetSpec;
  plan: SourceVmPlan;
  instanceName: string;
  firmware: 'bios' | 'efi';
  secureBoot?: boolean;
  volumes: VolumeRef[];
  guestInspection?: GuestInspection;
}): FinalizeInput {
  const { target, plan, guestInspection } = args;
  return {
    migrationId: args.migrationId,
    project: target.project,
    instanceName: args.instanceName,
    // Plans made before automatic flavor fit carry no flavor: the migration named one then.
    flavor: plan.flavor ?? target.flavor!,
    availabilityZone: target.availabilityZone,
    firmware: args.firmware,
    secureBoot: args.secureBoot,
    machineType: target.machineType,
    diskBus: target.diskBus,
    volumes: args.volumes,
    nics: plan.nics,
    sourceVm: plan.name,
    target: target.name,
    guestOs: guestInspection ? { family: guestInspection.osFamily, distro: guestInspection.distro } : undefined,
    keyName: target.keyName,
    deleteVolumesOnTermination: target.deleteVolumesOnTermination,
  };
}

/** The boot check after Finalize, when the migration asked for it: recorded, and a failed one is a warning. */
export async function bootCheckIfAsked(
  validation: ReturnType<typeof guestActivities>['validation'],
  state: { validation?: MigrationValidation; warnings: string[] },
  instance: InstanceRef,
  options: GuestOptions | undefined,
): Promise<void> {
  if (!options?.bootCheck) return;
  state.validation = { bootCheck: await checkBoot(validation, instance, options.bootCheck) };
  if (!state.validation.bootCheck!.passed) state.warnings.push(`boot check failed: ${state.validation.bootCheck!.reason}`);
}
