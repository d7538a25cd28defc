import { ApplicationFailure, CancellationScope, condition, isCancellation, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { AgentDiskResult, GuestFixReport, GuestInspection, SourceInspection, SourceVmPlan } from '../activities';
import type { AgentMigrationInput } from '../shared/migration-input';
import type { MigrationStage } from '../shared/migration-stages';
import { MigrationState } from '../shared/search-attributes';
import type { InstanceRef } from '../targets/target-provider';
import { volumeTypeFor } from '../targets/storage-map';
import { controlActivities, migrationFailed, rootCauseMessage } from './activity-proxies';
import { agentEnrolledSignal, confirmSignal, type AgentMigrationState } from './agent-migration-state';
import { admissionSlot } from './admission-slot';
import { allOrCancel } from './all-or-cancel';
import { coldMigrationStateQuery, type ColdMigrationState } from './cold-migration-state';
import { startReplicationUpdate, type StartReplicationRequest } from './admission-messages';
import { convertGuest } from './guest-steps';
import { bootCheckIfAsked, finalizeInputOf } from './instance-steps';
import { guestPreflight } from './guest-preflight';
import { auditSignal } from './migration-audit';
import { releaseTarget } from './target-release';
import { volumeActivities, type HostTuning } from './worker-host';

const control = controlActivities();

/**
 * The instance's default name: the guest's host name; a machine known only by its IP address (no OS recognised) gets
 * its machine id beside it, as machines behind NAT can share an address.
 */
function instanceNameOf(input: AgentMigrationInput): string {
  const g = input.machine.guest;
  if (g.hostname) return g.hostname;
  return `${g.name || 'machine'}-${input.machineId.slice(2, 10)}`;
}

export interface AgentMigrationResult {
  migrationId: string;
  instance: InstanceRef;
  disks: AgentDiskResult[];
  guestFix: GuestFixReport;
  guestInspection?: GuestInspection;
}

/**
 * A machine booted from the agent's ISO, migrated cold, in the stages of the product's lifecycle table:
 * Queued (awaiting confirmation, when the template asks for one) → Export → Inspect → Write Volume → Guest Fixes →
 * Finalize → Completed. The source can do nothing but serve its disks (no power control, no change tracking), so
 * there is no power-off: booting the ISO stopped the machine's own OS. Every step that reads the machine runs on the
 * worker whose gateway the agent connects to.
 */
export async function agentMigration(input: AgentMigrationInput, tuning: HostTuning = {}): Promise<AgentMigrationResult> {
  const convertMode = input.guest?.convert ?? 'auto';
  const m = input.machine;
  const state: AgentMigrationState = {
    migrationId: input.migrationId,
    kind: 'agent',
    stage: 'Queued',
    disks: m.disks.map((d) => ({ key: d.index, label: d.name, capacityBytes: d.sizeBytes, bytesDone: 0 })),
    warnings: [],
    machine: {
      machineId: input.machineId,
      templateId: input.templateId,
      cpu: m.cpu,
      memoryBytes: m.memoryBytes,
      firmware: m.firmware,
      nics: m.nics,
      disks: m.disks,
      guest: m.guest,
      runs: [{ runId: m.bootId, at: new Date().toISOString() }],
    },
    sourceVm: { moref: input.machineId, name: m.guest.name || input.machineId },
    workerHost: input.gateway,
  };
  // The same query as the other migrations: the API and the Web UI read every kind the same way.
  setHandler(coldMigrationStateQuery, () => state as unknown as ColdMigrationState);
  setHandler(auditSignal, (entry) => void (state.audit ??= []).push(entry));
  setHandler(agentEnrolledSignal, (run) => {
    if (!state.machine.runs.some((r) => r.runId === run.runId)) state.machine.runs.push(run);
  });
  let confirmedBy: string | undefined = input.autoStart ? input.submittedBy : undefined;
  const confirm = (actor: string) => {
    confirmedBy ??= actor;
    state.awaitingConfirmation = false;
  };
  setHandler(confirmSignal, (req) => confirm(req?.actor ?? 'temporal-ui'));
  // POST /migrations/:id/start: the same Update as a migration created to be started later.
  setHandler(
    startReplicationUpdate,
    (req: StartReplicationRequest) => {
      confirm(req.actor);
      return { started: true as const, actor: req.actor };
    },
    {
      validator: (_req: StartReplicationRequest) => {
        if (confirmedBy) throw new Error(input.autoStart ? `migration ${input.migrationId} starts by itself (its template has autoStart); there is nothing to confirm` : `migration ${input.migrationId} was confirmed already`);
      },
    },
  );
  // Started through admission (the machine's project quotas): it waits in Queued for a grant after its
  // confirmation, and gives its place back when its copies are done and when it ends.
  const slot = admissionSlot({ migrationId: input.migrationId, admission: input.admission, startReplication: input.autoStart ? undefined : false }, { startedBy: () => confirmedBy !== undefined });
  const onHost = volumeActivities(input.gateway, tuning);

  const enter = (stage: MigrationStage) => {
    state.stage = stage;
    upsertSearchAttributes([{ key: MigrationState, value: stage }]);
    setCurrentDetails(`**${stage}** — migration ${input.migrationId} of machine ${state.sourceVm!.name} (${input.machineId}) into project ${input.target.project}`);
  };
  const tell = (text: string) => onHost.control.tellAgent({ machineId: input.machineId, text }).catch(() => false);

  try {
    // Queued: a template without autoStart waits for someone to confirm.
    if (!confirmedBy) {
      state.awaitingConfirmation = true;
      enter('Queued');
      await tell('the migration waits for a confirmation on the destination');
      await condition(() => confirmedBy !== undefined);
    }
    await slot.started();
    state.copySlots = await slot.granted();
    const plan: SourceVmPlan = await control.planAgentMachine({ machineId: input.machineId, machine: m, target: input.target });
    state.warnings.push(...plan.warnings);

    enter('Export');
    state.export = await onHost.transfer.openAgentExport({ machineId: input.machineId });

    enter('Inspect');
    const inspected = await onHost.transfer.inspectAgentSource({ machineId: input.machineId, guest: convertMode !== 'skip' });
    // The ISO's firmware is how the machine booted the agent, not necessarily its OS: the boot disk decides.
    const inspection: SourceInspection = { ...inspected.inspection, firmware: inspected.guestInspection?.firmware ?? inspected.inspection.firmware };
    const guestInspection = inspected.guestInspection;
    state.inspection = inspection;
    state.guestInspection = guestInspection;
    if (guestInspection) {
      const refused = guestPreflight({ vmName: plan.name, source: inspection, guest: guestInspection, convert: convertMode });
      if (refused) throw ApplicationFailure.nonRetryable(refused.message, refused.type);
    }

    enter('WriteVolume');
    const copies = await allOrCancel(plan.disks, async (disk, index) => {
      const result = await onHost.transfer.copyAgentDisk({
        migrationId: input.migrationId,
        machineId: input.machineId,
        diskKey: disk.key,
        target: {
          name: input.target.name,
          project: input.target.project,
          volumeName: `${input.migrationId}-disk${index}`,
          volumeType: volumeTypeFor(input.target, { key: disk.key, fileName: '' }),
          availabilityZone: input.target.volumeAvailabilityZone,
        },
      });
      const s = state.disks.find((d) => d.key === result.disk)!;
      Object.assign(s, { bytesDone: result.bytesTotal, volume: result.volume.name, verification: result.verification });
      if (result.sourceChanged) state.warnings.push(result.sourceChanged);
      return result;
    });
    await slot.copiesDone();

    enter('GuestFixes');
    const guestFix = await convertGuest(onHost.guest, {
      migrationId: input.migrationId,
      volumes: copies.map((c) => c.volume),
      inspection,
      guestInspection,
      plan: { ...plan, firmware: inspection.firmware },
      target: input.target,
      options: input.guest,
    });
    state.guestFix = guestFix;
    state.warnings.push(...guestFix.warnings);

    enter('Finalize');
    let instance = await onHost.control.finalize(
      finalizeInputOf({
        migrationId: input.migrationId,
        target: input.target,
        plan,
        instanceName: input.target.instanceName ?? instanceNameOf(input),
        firmware: inspection.firmware,
        secureBoot: false,
        volumes: guestFix.bootVolumes,
        guestInspection,
      }),
    );
    state.instance = instance;
    await bootCheckIfAsked(onHost.guest.validation, state, instance, input.guest);
    if (input.target.start) {
      instance = await onHost.control.startInstance({ instance, project: instance.project, name: instance.name });
      state.instance = instance;
    }
    await tell(`migration completed: instance ${instance.name} in project ${instance.project}. Power this machine off.`);

    enter('Completed');
    return { migrationId: input.migrationId, instance, disks: copies, guestFix, ...(guestInspection ? { guestInspection } : {}) };
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        await releaseTarget(input, state.warnings, undefined, onHost.control);
        await tell('the migration was cancelled on the destination; you can boot this machine from its own disk again');
      });
      enter('Cancelled');
      throw err;
    }
    const failedIn = state.stage;
    state.error = rootCauseMessage(err);
    await CancellationScope.nonCancellable(async () => {
      await releaseTarget(input, state.warnings, undefined, onHost.control);
      await tell(`the migration failed in ${failedIn}: ${state.error}`);
    });
    enter('Failed');
    throw migrationFailed(input.migrationId, failedIn, state.error, err);
  } finally {
    await slot.ended();
  }
}
