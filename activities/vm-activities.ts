import type { SourceCapabilities } from '../source/source-provider';
import { VSPHERE_CAPABILITIES } from '../source/vsphere/vsphere-source';
import { Context } from '@temporalio/activity';
import type { VmSelector, NetworkMapping, TargetSpec } from '../shared/migration-input';
import { checkFlavorFits } from '../targets/flavor-fit';
import { planFirmware } from '../targets/firmware-plan';
import { planNics } from '../targets/network-plan';
import type { NicSpec } from '../targets/target-provider';
import type { VmHardware } from '../vsphere/vm-hardware';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated, PreflightError } from './failures';
import { withVmSession } from '../source/vsphere/vm-session';

/** The parts of the source VM the rest of the migration needs; small enough to live in workflow history. */
export interface SourceVmPlan {
  moref: string;
  name: string;
  guestId: string;
  guestFamily?: string;
  firmware: 'bios' | 'efi';
  /** EFI with Secure Boot on (absent in plans recorded before it was read). */
  secureBoot?: boolean;
  numCPU: number;
  memoryMB: number;
  powerState: VmHardware['powerState'];
  disks: Array<{ key: number; label: string; capacityBytes: number; fileName: string }>;
  nics: NicSpec[];
  /** The flavor the instance gets: the one asked for, or the smallest that fits when none was. */
  flavor?: string;
  warnings: string[];
  /** What the source can do besides serving disks (absent in plans recorded before sources declared it: vSphere's). */
  capabilities?: SourceCapabilities;
}

export interface PowerOffResult {
  /** Power state before we acted, so an operator (or a later cancel) knows what to restore. */
  previousPowerState: VmHardware['powerState'];
  powerState: 'poweredOff';
}

/** Below the workflow's 5-minute start-to-close timeout, so an attempt gives up before its retry starts. */
const VM_TASK_TIMEOUT_MS = 4 * 60 * 1000;

export function createVmActivities(deps: ActivityDeps) {
  return {
    /** Queued stage: read-only checks before anything is touched: VM exists, NICs mapped, flavor fits. */
    async preflight(input: { sourceId: string; vm: VmSelector; target: TargetSpec; kind?: 'cold' | 'warm' }): Promise<SourceVmPlan> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, input.vm, async ({ client, vm }) => {
          const hw = await client.getVmHardware(vm);
          const warnings: string[] = [];
          if (hw.disks.length === 0) throw new PreflightError(`VM ${hw.name} has no virtual disks to migrate`);
          const nics = planNics(hw.nics, input.target.networks as NetworkMapping[]);
          const provider = deps.targets.get(input.target.name);
          const fit = checkFlavorFits(await provider.listFlavors(input.target.project), input.target.flavor, {
            name: hw.name,
            vcpus: hw.numCPU,
            memoryMB: hw.memoryMB,
          });
          if (!fit.ok) throw new PreflightError(fit.reason);
          const firmwarePlan = planFirmware({ firmware: hw.firmware, secureBoot: hw.secureBoot }, input.target.machineType);
          if (!firmwarePlan.ok) throw new PreflightError(firmwarePlan.reason);
          const flavor = fit.flavor.name;
          // The cloud's own checks: the volume type, networks and subnets exist in the project (nothing is created).
          warnings.push(...(await provider.checkPlacement({ project: input.target.project, volumeType: input.target.volumeType, availabilityZone: input.target.availabilityZone, volumeAvailabilityZone: input.target.volumeAvailabilityZone, nics })));
          // A warm migration keeps the source running until cutover.
          if (hw.powerState !== 'poweredOff' && input.kind !== 'warm') warnings.push(`VM ${hw.name} was ${hw.powerState}; it is powered off for the migration`);
          return {
            moref: vm.value,
            name: hw.name,
            guestId: hw.guestId,
            guestFamily: hw.guestFamily,
            firmware: hw.firmware,
            secureBoot: hw.secureBoot,
            numCPU: hw.numCPU,
            memoryMB: hw.memoryMB,
            powerState: hw.powerState,
            disks: hw.disks.map((d) => ({ key: d.key, label: d.label, capacityBytes: d.capacityBytes, fileName: d.fileName })),
            nics,
            flavor,
            warnings,
            capabilities: VSPHERE_CAPABILITIES,
          };
        }),
      );
    },

    /** Export stage: the source must be off before its disks are read; a VM that is already off is left alone. */
    async powerOff(input: { sourceId: string; vmMoref: string }): Promise<PowerOffResult> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm }) => {
          const previousPowerState = await client.getPowerState(vm);
          if (previousPowerState !== 'poweredOff') {
            Context.current().log.info('powering off source VM', { vm: input.vmMoref, previousPowerState });
            await client.powerOff(vm, { timeoutMs: VM_TASK_TIMEOUT_MS });
          }
          const now = await client.getPowerState(vm);
          if (now !== 'poweredOff') throw new Error(`VM ${input.vmMoref} is still ${now} after power-off`);
          return { previousPowerState, powerState: 'poweredOff' };
        }),
      );
    },

    /** After a cancel: a source we powered off is powered on again, so cancelling gives the workload back. */
    async restoreSourcePower(input: { sourceId: string; vmMoref: string; powerState: VmHardware['powerState'] }): Promise<{ powerState: string }> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm }) => {
          const now = await client.getPowerState(vm);
          if (input.powerState === 'poweredOn' && now === 'poweredOff') await client.powerOn(vm, { timeoutMs: VM_TASK_TIMEOUT_MS });
          return { powerState: await client.getPowerState(vm) };
        }),
      );
    },
  };
}
