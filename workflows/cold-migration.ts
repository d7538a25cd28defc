import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ExportDiskResult, GuestFixReport, GuestInspection, SourceInspection, SourceVmPlan } from '../activities';
import type { InstanceRef } from '../targets/target-provider';
import type { ColdMigrationInput } from '../shared/migration-input';
import type { MigrationStage } from '../shared/migration-stages';
import { MigrationState } from '../shared/search-attributes';
import { volumeTypeFor } from '../targets/storage-map';
import { coldMigrationStateQuery, type ColdMigrationState, type MigrationValidation } from './cold-migration-state';
import { controlActivities, migrationFailed, rootCauseMessage, transferActivities } from './activity-proxies';
import { allOrCancel } from './all-or-cancel';
import { guestActivities } from './guest-activity-proxies';
import { convertGuest } from './guest-steps';
import { bootCheckIfAsked, finalizeInputOf } from './instance-steps';
import { guestPreflight } from './guest-preflight';
import { releaseTarget, TARGET_RELEASE_PATCH } from './target-release';
import { admissionSlot } from './admission-slot';
import { capabilitiesOf } from './source-capabilities';
import { auditSignal } from './migration-audit';
import { claimWorkerHost, hostUnavailableReason, volumeActivities, type HostTuning } from './worker-host';

/**
 * Marks runs with the guest conversion of issue 4: libguestfs inspection in Inspect, virt-v2v-in-place on clones in
 * Guest Fixes, the instance booting from the converted clones, and the optional boot check. Runs started before it
 * replay (and finish) on the old path: inspect layouts, no conversion.
 */
export const GUEST_CONVERSION_PATCH = 'vmigrate-guest-conversion-v1';
/**
 * Marks runs that refuse, before copying, a guest whose boot disk contradicts vSphere's firmware or whose forced
 * conversion cannot work (guest-preflight.ts). Runs started before it copy first, as they did.
 */
export const GUEST_PREFLIGHT_PATCH = 'vmigrate-guest-preflight-v1';

const control = controlActivities();

export interface ColdMigrationResult {
  migrationId: string;
  instance: InstanceRef;
  disks: ExportDiskResult[];
  guestFix: GuestFixReport;
  guestInspection?: GuestInspection;
  validation?: MigrationValidation;
}

/**
 * Cold migration, one stage after another as in the product's lifecycle table:
 * Queued → Export → Inspect → Write Volume → Guest Fixes → Finalize → Completed.
 */
export async function coldMigration(input: ColdMigrationInput, tuning: HostTuning = {}): Promise<ColdMigrationResult> {
  const guest = guestActivities(tuning.heartbeatTimeoutSeconds);
  // Decided once, at the start: a run that began without it stays on the old path for good.
  const withGuestConversion = patched(GUEST_CONVERSION_PATCH);
  const convertMode = input.guest?.convert ?? 'auto';
  const state: ColdMigrationState = { migrationId: input.migrationId, kind: 'cold', stage: 'Queued', disks: [], warnings: [] };
  setHandler(coldMigrationStateQuery, () => state);
  setHandler(auditSignal, (entry) => void (state.audit ??= []).push(entry));
  const slot = admissionSlot(input);
  /** Volume work: on the shared queue until a host is claimed (a target whose volumes are files on a worker host). */
  let onHost = volumeActivities(undefined, tuning);

  const enter = (stage: MigrationStage) => {
    state.stage = stage;
    upsertSearchAttributes([{ key: MigrationState, value: stage }]);
    setCurrentDetails(`**${stage}** — migration ${input.migrationId} of ${input.vm.name ?? input.vm.moref} into project ${input.target.project}`);
  };

  try {
    // Queued: wait for a slot (admission), then a read-only preflight before anything is touched.
    // Created to be started later: it waits here, holding its VM, until it is started.
    if (slot.awaitingStart) {
      state.awaitingStart = true;
      await slot.started();
      state.awaitingStart = false;
    }
    state.copySlots = await slot.granted();
    const plan: SourceVmPlan = await control.preflight({ sourceId: input.sourceId, vm: input.vm, target: input.target });
    state.sourceVm = { moref: plan.moref, name: plan.name };
    state.warnings.push(...plan.warnings);
    state.disks = plan.disks.map((d) => ({ key: d.key, label: d.label, capacityBytes: d.capacityBytes, bytesDone: 0 }));
    const vmRef = { sourceId: input.sourceId, vmMoref: plan.moref };
    const host = await claimWorkerHost(input.target.name);
    if (host) {
      state.workerHost = host;
      onHost = volumeActivities(host, tuning);
    }

    enter('Export');
    // Recorded before acting: a retried powerOff would see the VM already off and report that instead.
    state.sourcePowerStateBefore = plan.powerState;
    if (!capabilitiesOf(plan).powerControl) {
      // A source that cannot power its machine off serves disks of a machine that is not running its OS.
      state.sourcePowerStateBefore = undefined;
    } else if (input.cold?.shutdownSource) {
      // A clean guest shutdown first (file systems consistent on disk), a hard power-off after the timeout.
      const shutdown = await transferActivities(tuning.heartbeatTimeoutSeconds ?? 30).shutdownSource({ ...vmRef, guestShutdown: true, timeoutSeconds: input.cold.shutdownTimeoutSeconds ?? 300 });
      if (shutdown.note) state.warnings.push(shutdown.note);
    } else {
      await control.powerOff(vmRef);
    }
    state.export = await control.openExport(vmRef);

    enter('Inspect');
    const inspection: SourceInspection = await control.inspectSource(vmRef);
    state.inspection = inspection;
    let guestInspection: GuestInspection | undefined;
    if (withGuestConversion && convertMode !== 'skip') {
      guestInspection = await guest.inspection.inspectGuest(vmRef);
      state.guestInspection = guestInspection;
      if (patched(GUEST_PREFLIGHT_PATCH)) {
        const refused = guestPreflight({ vmName: plan.name, source: inspection, guest: guestInspection, convert: convertMode });
        if (refused) throw ApplicationFailure.nonRetryable(refused.message, refused.type);
      }
    }

    enter('WriteVolume');
    const copies = await copyDisks(onHost.transfer, input, plan, state.copySlots, (result) => {
      const s = state.disks.find((d) => d.key === result.disk)!;
      Object.assign(s, { bytesDone: result.bytesTotal, volume: result.volume.name, verification: result.verification });
    });
    await slot.copiesDone();

    enter('GuestFixes');
    const guestFix = withGuestConversion
      ? await convertGuest(onHost.guest, {
          migrationId: input.migrationId,
          volumes: copies.map((c) => c.volume),
          inspection,
          guestInspection,
          plan,
          target: input.target,
          options: input.guest,
        })
      : await onHost.transfer.guestFix({
          volumes: copies.map((c) => c.volume),
          sourceLayouts: plan.disks.map((d) => inspection.disks.find((x) => x.key === d.key)!.layout),
        });
    state.guestFix = guestFix;
    if (withGuestConversion) state.warnings.push(...guestFix.warnings);
    else if (!guestFix.converted && guestFix.reason) state.warnings.push(guestFix.reason);

    enter('Finalize');
    let instance = await onHost.control.finalize(
      finalizeInputOf({
        migrationId: input.migrationId,
        target: input.target,
        plan,
        instanceName: input.target.instanceName ?? plan.name,
        firmware: inspection.firmware,
        secureBoot: inspection.secureBoot,
        // Converted: the instance boots from the converted clones; the copied volumes stay as they were copied.
        volumes: withGuestConversion ? guestFix.bootVolumes : copies.map((c) => c.volume),
        guestInspection,
      }),
    );
    state.instance = instance;
    if (withGuestConversion) await bootCheckIfAsked(onHost.guest.validation, state, instance, input.guest);
    // Launch only when asked: a migrated VM that starts on its own could clash with its source. (Inputs of runs made
    // before this option cannot carry it, so their histories replay unchanged.)
    if (input.target.start) {
      instance = await onHost.control.startInstance({ instance, project: instance.project, name: instance.name });
      state.instance = instance;
    }

    enter('Completed');
    return {
      migrationId: input.migrationId,
      instance,
      disks: copies,
      guestFix,
      ...(guestInspection ? { guestInspection } : {}),
      ...(state.validation ? { validation: state.validation } : {}),
    };
  } catch (err) {
    if (isCancellation(err)) {
      // Give the workload back: a source that was on is powered on again (every copy has stopped by now, see
      // copyDisks), and the target keeps nothing the migration made unless it asked to.
      await CancellationScope.nonCancellable(async () => {
        if (state.sourceVm && state.sourcePowerStateBefore === 'poweredOn') {
          try {
            await control.restoreSourcePower({ sourceId: input.sourceId, vmMoref: state.sourceVm.moref, powerState: 'poweredOn' });
          } catch (restoreErr) {
            state.warnings.push(`could not power the source VM back on: ${rootCauseMessage(restoreErr)}`);
          }
        }
        if (patched(TARGET_RELEASE_PATCH)) await releaseTarget(input, state.warnings, undefined, onHost.control);
      });
      enter('Cancelled');
      throw err;
    }
    const failedIn = state.stage;
    state.error = hostUnavailableReason(err, state.workerHost, tuning) ?? rootCauseMessage(err);
    if (patched(TARGET_RELEASE_PATCH)) await CancellationScope.nonCancellable(() => releaseTarget(input, state.warnings, undefined, onHost.control));
    enter('Failed');
    throw migrationFailed(input.migrationId, failedIn, state.error, err);
  } finally {
    await slot.ended();
  }
}

/**
 * Write Volume: every disk in parallel (or as many at a time as admission granted). The first failure cancels the other copies, and this returns only once all
 * of them have stopped, so nothing still reads the source when the caller reacts (e.g. powers it back on).
 */
function copyDisks(
  transfer: ReturnType<typeof transferActivities>,
  input: ColdMigrationInput,
  plan: SourceVmPlan,
  copySlots: number | undefined,
  onCopied: (result: ExportDiskResult) => void,
): Promise<ExportDiskResult[]> {
  return allOrCancel(plan.disks, async (disk, index) => {
    // A retried migration picks up what its earlier run made durable (absent otherwise, so older inputs replay as before).
    const earlier = input.retry?.disks[String(disk.key)];
    const result = await transfer.exportDisk({
      migrationId: input.migrationId,
      sourceId: input.sourceId,
      vmMoref: plan.moref,
      diskKey: disk.key,
      target: {
        name: input.target.name,
        project: input.target.project,
        volumeName: `${input.migrationId}-disk${index}`,
        volumeType: volumeTypeFor(input.target, disk),
        availabilityZone: input.target.volumeAvailabilityZone,
      },
      ...(earlier?.since && (earlier.copied || earlier.resumeFrom)
        ? { earlierRun: { since: earlier.since, copy: earlier.copied as ExportDiskResult | undefined, resumeFrom: earlier.resumeFrom, volumeId: earlier.volumeId } }
        : {}),
    });
    onCopied(result);
    return result;
  }, copySlots);
}
