import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ExportDiskResult, GuestFixReport, SourceInspection, SourceVmPlan, VmigrateActivities } from '../activities';
import type { InstanceRef } from '../target/target-driver';
import type { ColdMigrationInput } from '../shared/migration-input';
import type { MigrationStage } from '../shared/migration-stages';
import { MigrationState } from '../shared/search-attributes';
import { coldMigrationStateQuery, type ColdMigrationState } from './cold-migration-state';

const NON_RETRYABLE = ['InvalidLogin', 'VmNotFound', 'UnknownSourceError', 'ConfigError', 'PreflightError', 'NetworkMappingError', 'VerificationError'];

/** Short calls against the vSphere API or the target cloud. */
const control = proxyActivities<VmigrateActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8, nonRetryableErrorTypes: NON_RETRYABLE },
});

function transferActivities(heartbeatTimeoutSeconds: number) {
  /** Long byte transfers: liveness by heartbeat, so a dead worker is noticed within the heartbeat timeout. */
  return proxyActivities<VmigrateActivities>({
    startToCloseTimeout: '7 days',
    heartbeatTimeout: `${heartbeatTimeoutSeconds}s`,
    // On cancel, wait until the copy has really stopped (nbdkit gone, volume closed) before the workflow moves on.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

export interface ColdMigrationResult {
  migrationId: string;
  instance: InstanceRef;
  disks: ExportDiskResult[];
  guestFix: GuestFixReport;
}

/**
 * Cold migration, one stage after another as in the product's lifecycle table:
 * Queued → Export → Inspect → Write Volume → Guest Fixes → Finalize → Completed.
 */
export async function coldMigration(input: ColdMigrationInput, tuning: { heartbeatTimeoutSeconds?: number } = {}): Promise<ColdMigrationResult> {
  const transfer = transferActivities(tuning.heartbeatTimeoutSeconds ?? 30);
  const state: ColdMigrationState = { migrationId: input.migrationId, kind: 'cold', stage: 'Queued', disks: [], warnings: [] };
  setHandler(coldMigrationStateQuery, () => state);

  const enter = (stage: MigrationStage) => {
    state.stage = stage;
    upsertSearchAttributes([{ key: MigrationState, value: stage }]);
    setCurrentDetails(`**${stage}** — migration ${input.migrationId} of ${input.vm.name ?? input.vm.moref} into project ${input.target.project}`);
  };

  try {
    // Queued: read-only preflight before anything is touched.
    const plan: SourceVmPlan = await control.preflight({ sourceId: input.sourceId, vm: input.vm, target: input.target });
    state.sourceVm = { moref: plan.moref, name: plan.name };
    state.warnings.push(...plan.warnings);
    state.disks = plan.disks.map((d) => ({ key: d.key, label: d.label, capacityBytes: d.capacityBytes, bytesDone: 0 }));
    const vmRef = { sourceId: input.sourceId, vmMoref: plan.moref };

    enter('Export');
    const power = await control.powerOff(vmRef);
    state.sourcePowerStateBefore = power.previousPowerState;
    state.export = await control.openExport(vmRef);

    enter('Inspect');
    const inspection: SourceInspection = await control.inspectSource(vmRef);
    state.inspection = inspection;

    enter('WriteVolume');
    const copies = await Promise.all(
      plan.disks.map(async (disk, index) => {
        const result = await transfer.exportDisk({
          migrationId: input.migrationId,
          ...vmRef,
          diskKey: disk.key,
          target: { project: input.target.project, volumeName: `${input.migrationId}-disk${index}`, volumeType: input.target.volumeType },
        });
        const s = state.disks.find((d) => d.key === disk.key)!;
        Object.assign(s, { bytesDone: result.bytesTotal, volume: result.volume.name, verification: result.verification });
        return result;
      }),
    );

    enter('GuestFixes');
    const guestFix = await transfer.guestFix({
      volumes: copies.map((c) => c.volume),
      sourceLayouts: plan.disks.map((d) => inspection.disks.find((x) => x.key === d.key)!.layout),
    });
    state.guestFix = guestFix;
    if (!guestFix.converted && guestFix.reason) state.warnings.push(guestFix.reason);

    enter('Finalize');
    const instance = await control.finalize({
      migrationId: input.migrationId,
      project: input.target.project,
      instanceName: input.target.instanceName ?? plan.name,
      flavor: input.target.flavor,
      availabilityZone: input.target.availabilityZone,
      firmware: inspection.firmware,
      machineType: input.target.machineType,
      diskBus: input.target.diskBus,
      volumes: copies.map((c) => c.volume),
      nics: plan.nics,
      sourceVm: plan.name,
    });
    state.instance = instance;

    enter('Completed');
    return { migrationId: input.migrationId, instance, disks: copies, guestFix };
  } catch (err) {
    if (isCancellation(err)) {
      // Give the workload back: a source we powered off is powered on again. Target volumes are kept for inspection.
      await CancellationScope.nonCancellable(async () => {
        if (state.sourceVm && state.sourcePowerStateBefore === 'poweredOn') {
          await control.restoreSourcePower({ sourceId: input.sourceId, vmMoref: state.sourceVm.moref, powerState: 'poweredOn' });
        }
      });
      enter('Cancelled');
      throw err;
    }
    const failedIn = state.stage;
    state.error = rootCauseMessage(err);
    enter('Failed');
    throw ApplicationFailure.create({
      type: 'MigrationFailed',
      message: `migration ${input.migrationId} failed in stage ${failedIn}: ${state.error}`,
      cause: err instanceof Error ? err : undefined,
      nonRetryable: true,
    });
  }
}

/** Activity failures wrap the real reason; an operator wants the innermost message. */
function rootCauseMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}
