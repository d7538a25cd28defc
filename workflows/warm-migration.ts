import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { GuestFixReport, ShutdownSourceResult, SyncDiskResult, SyncSnapshot } from '../activities';
import type { CutoverRequest, WarmMigrationInput } from '../shared/migration-input';
import type { MigrationStage } from '../shared/migration-stages';
import { MigrationState } from '../shared/search-attributes';
import { volumeTypeFor } from '../targets/storage-map';
import type { InstanceRef } from '../targets/target-provider';
import { controlActivities, migrationFailed, rootCauseMessage, transferActivities } from './activity-proxies';
import { allOrCancel } from './all-or-cancel';
import { guestActivities } from './guest-activity-proxies';
import { checkBoot, convertGuest } from './guest-steps';
import { guestPreflight } from './guest-preflight';
import { releaseTarget, TARGET_RELEASE_PATCH } from './target-release';
import { claimWorkerHost, hostUnavailableReason, volumeActivities, type HostTuning } from './worker-host';
import { admissionSlot } from './admission-slot';
import { requireCapabilities } from './source-capabilities';
import { auditSignal } from './migration-audit';
import { forecastFinalSync, type SyncRecord } from './sync-forecast';
import {
  cutoverSignal,
  cutoverUpdate,
  warmMigrationStateQuery,
  type AcceptedCutover,
  type CutoverAccepted,
  type WarmCarryOver,
  type WarmMigrationState,
} from './warm-migration-state';

const DEFAULT_SYNC_INTERVAL_S = 3600;
const DEFAULT_SHUTDOWN_TIMEOUT_S = 300;
const DEFAULT_SYNCS_PER_RUN = 50;
/** Syncs kept in detail (carried across continue-as-new); older ones live on in the totals. */
const SYNC_RECORDS_KEPT = 20;

export interface WarmMigrationResult {
  migrationId: string;
  instance: InstanceRef;
  cutover: AcceptedCutover;
  shutdown: ShutdownSourceResult;
  finalSync: SyncRecord;
  totals: WarmCarryOver['totals'];
  guestFix: GuestFixReport;
}

/**
 * Warm migration, as an explicit itinerary:
 * Queued (preflight, enable CBT) → FullSync → Ready ⇄ Syncing (every interval) → CuttingOver (source shut down,
 * final sync) → GuestFixes → Finalize → Completed.
 * Runs for days: it continues as new after `syncsPerRun` syncs or when the server suggests it, carrying the per-disk
 * change ids, the sync statistics and a pending cutover.
 */
export async function warmMigration(
  input: WarmMigrationInput,
  carried?: WarmCarryOver,
  tuning: HostTuning = {},
): Promise<WarmMigrationResult> {
  const control = controlActivities();
  const transfer = transferActivities(tuning.heartbeatTimeoutSeconds ?? 30);
  const guest = guestActivities(tuning.heartbeatTimeoutSeconds);
  /** Volume work: on the claimed worker host's queue once there is one (carried to later runs), else shared. */
  let onHost = volumeActivities(carried?.workerHost, tuning);
  const opts = input.warm ?? {};
  const intervalMs = (opts.syncIntervalSeconds ?? DEFAULT_SYNC_INTERVAL_S) * 1000;
  const state: WarmMigrationState = { migrationId: input.migrationId, kind: 'warm', stage: 'Queued', warnings: [], ...carried };
  const warnings = state.warnings!;

  setHandler(warmMigrationStateQuery, () => ({ ...state, forecast: forecastFinalSync(state.syncs ?? [], state.lastSnapshotAt, Date.now()) }));
  setHandler(auditSignal, (entry) => void (state.audit ??= []).push(entry));
  const slot = admissionSlot(input);
  /** Set when this run hands over to the next: the migration has not ended. */
  let continuedAsNew = false;

  /** Why a cutover cannot be accepted now, or undefined if it can. Shared by the Update's validator and the Signal. */
  const cutoverProblem = (req: CutoverRequest | undefined): string | undefined => {
    if (req !== undefined && (typeof req !== 'object' || req === null)) return 'the cutover input must be an object like {"actor": "name", "at": "ISO time"}';
    if (req?.actor !== undefined && typeof req.actor !== 'string') return '"actor" must be a string';
    if (req?.at !== undefined && (typeof req.at !== 'string' || Number.isNaN(Date.parse(req.at)))) return `"at" must be an ISO 8601 time, got ${JSON.stringify(req.at)}`;
    if (state.cutover) return `cutover was already requested by ${state.cutover.actor} at ${state.cutover.requestedAt}`;
    if (state.stage !== 'Ready' && state.stage !== 'Syncing') {
      return `migration ${input.migrationId} is ${state.stage}; cutover is possible only while it is Ready (after the full sync)`;
    }
    return undefined;
  };
  const acceptCutover = (req: CutoverRequest | undefined, via: AcceptedCutover['via']): CutoverAccepted => {
    const cutover: AcceptedCutover = { actor: req?.actor || (via === 'signal' ? 'signal' : 'api'), via, requestedAt: new Date().toISOString(), at: req?.at };
    state.cutover = cutover;
    const forecast = forecastFinalSync(state.syncs ?? [], state.lastSnapshotAt, req?.at ? Date.parse(req.at) : Date.now());
    describe();
    return { accepted: true, ...cutover, predictedFinalSyncSeconds: forecast && forecast.predictedFinalSyncMs / 1000 };
  };
  setHandler(cutoverUpdate, (req) => acceptCutover(req, 'update'), {
    validator: (req) => {
      const problem = cutoverProblem(req);
      if (problem) throw new Error(problem);
    },
    description: 'Cut over: shut the source down, run the final sync, convert the guest and launch the target. Input: {"actor": "your name", "at": "optional ISO time"}. Rejected unless the migration is Ready.',
  });
  setHandler(
    cutoverSignal,
    (req) => {
      const problem = cutoverProblem(req);
      // A signal cannot be refused: an unacceptable one is recorded where operators look, and otherwise ignored.
      if (problem) warnings.push(`cutover signal ignored: ${problem}`);
      else acceptCutover(req, 'signal');
    },
    {
      description: 'Cut over (same as the cutover Update, for the Temporal Web UI). Input: {"actor": "your name", "at": "optional ISO time"}. Ignored, with a warning in the state, unless the migration is Ready.',
    },
  );

  function describe() {
    const last = state.syncs?.[state.syncs.length - 1];
    const forecast = forecastFinalSync(state.syncs ?? [], state.lastSnapshotAt, Date.now());
    const lines = [
      `**${state.stage}** — warm migration ${input.migrationId} of ${input.vm.name ?? input.vm.moref} into project ${input.target.project}`,
      state.totals ? `syncs: ${state.totals.syncs} (${state.totals.failedSyncs} failed, ${state.totals.fullResyncs} full resyncs)` : '',
      last ? `last sync #${last.n} (${last.kind}): ${last.changedBytes} bytes changed, ${last.bytesRead} read, ${last.durationMs} ms` : '',
      forecast ? `predicted final sync (downtime): ${(forecast.predictedFinalSyncMs / 1000).toFixed(1)} s at ${Math.round(forecast.dirtyBytesPerSecond)} B/s dirty` : '',
      state.cutover ? `cutover requested by ${state.cutover.actor} (${state.cutover.via})${state.cutover.at ? ` for ${state.cutover.at}` : ''}` : 'send the `cutover` signal or update to cut over',
    ];
    setCurrentDetails(lines.filter(Boolean).join('\n\n'));
  }
  const enter = (stage: MigrationStage) => {
    state.stage = stage;
    upsertSearchAttributes([{ key: MigrationState, value: stage }]);
    describe();
  };

  const vmRef = () => ({ sourceId: input.sourceId, vmMoref: state.plan!.moref });
  const removeOurSnapshots = () => control.removeSyncSnapshots({ ...vmRef(), migrationId: input.migrationId });

  /** Disks whose copy of the current sync has started and not completed: their target may hold part of it. */
  const copying = new Set<number>();

  /** Every disk of one snapshot in parallel; the first failure cancels the rest and is the one reported. */
  function syncAllDisks(snap: SyncSnapshot): Promise<SyncDiskResult[]> {
    // The full sync copies as many disks at a time as admission granted; the small incremental syncs all at once.
    const concurrency = state.stage === 'FullSync' ? state.copySlots : undefined;
    return allOrCancel(state.disks!, async (disk, index) => {
      const frozen = snap.disks.find((d) => d.key === disk.key);
      if (!frozen) throw ApplicationFailure.nonRetryable(`the VM no longer has disk ${disk.key} (${disk.label})`, 'SourceChangedError');
      if (frozen.capacityBytes !== disk.capacityBytes) {
        disk.fullSyncReason = `disk ${disk.key} changed capacity from ${disk.capacityBytes} to ${frozen.capacityBytes} bytes`;
      }
      copying.add(disk.key);
      const result = await onHost.transfer.syncDisk({
        migrationId: input.migrationId,
        sourceId: input.sourceId,
        vmMoref: state.plan!.moref,
        snapshot: snap.snapshot,
        diskKey: disk.key,
        sinceChangeId: disk.changeId,
        fullSyncReason: disk.changeId ? disk.fullSyncReason : undefined,
        // A retried migration's first sync: only into the volume the earlier run synced (absent otherwise).
        ...(disk.keptVolumeId ? { keptVolumeId: disk.keptVolumeId } : {}),
        ...(disk.clearStaleData ? { clearStaleData: true } : {}),
        volume: {
          target: input.target.name,
          project: input.target.project,
          name: `${input.migrationId}-disk${index}`,
          volumeType: volumeTypeFor(input.target, { key: disk.key, fileName: state.plan!.disks.find((d) => d.key === disk.key)?.fileName ?? '' }),
          availabilityZone: input.target.volumeAvailabilityZone,
        },
      });
      // Recorded per disk as soon as it is durable: a sync that fails on another disk keeps this one's progress.
      Object.assign(disk, { changeId: result.changeId, volume: result.volume, fullSyncReason: undefined, keptVolumeId: undefined, clearStaleData: undefined });
      copying.delete(disk.key);
      return result;
    }, concurrency);
  }

  /**
   * One sync, in VMware's documented order: snapshot → changed areas → copy → record the new change ids → remove the
   * snapshot. The snapshot is removed only after its change ids are recorded here (and so in history).
   */
  async function runSync(kind: SyncRecord['kind']): Promise<SyncRecord> {
    const totals = state.totals!;
    const n = totals.syncs + totals.failedSyncs + 1;
    const snapshotAt = Date.now();
    const snap = await control.createSyncSnapshot({ ...vmRef(), migrationId: input.migrationId, sync: n, purpose: `${kind} sync` });
    const results = await syncAllDisks(snap);
    const record: SyncRecord = {
      n,
      kind,
      snapshotAt,
      sinceSnapshotAt: kind === 'full' ? undefined : state.lastSnapshotAt,
      durationMs: Date.now() - snapshotAt,
      copyMs: Math.max(0, ...results.map((r) => r.copyMs)),
      changedBytes: results.reduce((s, r) => s + r.areaBytes, 0),
      bytesRead: results.reduce((s, r) => s + r.bytesRead, 0),
      fullSyncReasons: results.filter((r) => r.mode === 'full' && r.fullSyncReason).map((r) => `disk ${r.disk}: ${r.fullSyncReason}`),
    };
    state.lastSnapshotAt = snapshotAt;
    state.syncs = [...(state.syncs ?? []), record].slice(-SYNC_RECORDS_KEPT);
    totals.syncs++;
    totals.bytesRead += record.bytesRead;
    totals.changedBytes += record.changedBytes;
    totals.fullResyncs += record.fullSyncReasons.length;
    for (const reason of record.fullSyncReasons) warnings.push(`sync #${n} resynced in full: ${reason}`);
    state.lastSyncError = undefined;
    describe();
    await removeOurSnapshots();
    return record;
  }

  /** A periodic sync that fails (after its retries) is recorded and the next one covers its changes: never skipped silently. */
  async function periodicSync(): Promise<void> {
    enter('Syncing');
    try {
      await runSync('incremental');
    } catch (err) {
      if (isCancellation(err)) throw err;
      state.totals!.failedSyncs++;
      state.lastSyncError = hostUnavailableReason(err, state.workerHost, tuning) ?? rootCauseMessage(err);
      // A copy abandoned part-way left the volume between two change ids; only a full sync makes it whole again.
      for (const disk of state.disks!.filter((d) => copying.has(d.key))) {
        disk.fullSyncReason = `sync failed part-way through its copy (${state.lastSyncError})`;
      }
      copying.clear();
      warnings.push(`sync failed: ${state.lastSyncError}; the next sync covers its changes`);
      await removeOurSnapshots().catch((cleanupErr) => warnings.push(`could not remove the failed sync's snapshot: ${rootCauseMessage(cleanupErr)}`));
    }
    enter('Ready');
  }

  const carry = (): WarmCarryOver => ({
    run: state.run!,
    plan: state.plan!,
    changeTracking: state.changeTracking!,
    disks: state.disks!,
    syncs: state.syncs!,
    totals: state.totals!,
    lastSnapshotAt: state.lastSnapshotAt,
    nextSyncAt: state.nextSyncAt!,
    cutover: state.cutover,
    warnings: warnings.slice(-50),
    ...(state.workerHost ? { workerHost: state.workerHost } : {}),
  });

  try {
    if (!carried) {
      // Created to be started later: it waits here, holding its VM, until it is started.
      if (slot.awaitingStart) {
        state.awaitingStart = true;
        await slot.started();
        state.awaitingStart = false;
      }
      state.copySlots = await slot.granted();
      // Queued: a slot (admission), a read-only preflight, then Changed Block Tracking on (or a clear reason why it cannot be).
      const plan = await control.preflight({ sourceId: input.sourceId, vm: input.vm, target: input.target, kind: 'warm' });
      requireCapabilities(plan, ['changeTracking', 'snapshots'], 'a warm migration');
      Object.assign(state, {
        run: 1,
        plan,
        // A retried migration starts from what its earlier run synced into the volumes it kept (absent otherwise).
        disks: plan.disks.map((d) => {
          const earlier = input.retry?.disks[String(d.key)];
          if (earlier?.changeId && earlier.volumeId) return { key: d.key, label: d.label, capacityBytes: d.capacityBytes, changeId: earlier.changeId, keptVolumeId: earlier.volumeId };
          // Not picked up, but an earlier run may have written its volume: the full sync clears what is stale.
          return { key: d.key, label: d.label, capacityBytes: d.capacityBytes, ...(input.retry ? { clearStaleData: true } : {}) };
        }),
        syncs: [],
        totals: { syncs: 0, failedSyncs: 0, bytesRead: 0, changedBytes: 0, fullResyncs: 0 },
      });
      warnings.push(...plan.warnings);
      const host = await claimWorkerHost(input.target.name);
      if (host) {
        state.workerHost = host;
        onHost = volumeActivities(host, tuning);
      }
      state.changeTracking = await control.prepareChangeTracking({ ...vmRef(), migrationId: input.migrationId });
      warnings.push(...state.changeTracking.warnings);
      if (opts.cutoverAt) state.cutover = { actor: 'schedule', via: 'schedule', requestedAt: new Date().toISOString(), at: opts.cutoverAt };
      await removeOurSnapshots(); // leftovers of an earlier attempt with this id

      enter('FullSync');
      await runSync('full');
      await slot.copiesDone();
      state.nextSyncAt = Date.now() + intervalMs;
    } else {
      state.run = carried.run + 1;
    }

    enter('Ready');
    const cutoverDue = () => !!state.cutover && (!state.cutover.at || Date.parse(state.cutover.at) <= Date.now());
    let syncsThisRun = 0;
    while (!cutoverDue()) {
      const wakeAt = Math.min(state.nextSyncAt!, state.cutover?.at ? Date.parse(state.cutover.at) : Infinity);
      await condition(cutoverDue, Math.max(1, wakeAt - Date.now()));
      if (cutoverDue()) break;
      if (Date.now() < state.nextSyncAt!) continue; // woke for a scheduled cutover that moved, or early
      await periodicSync();
      state.nextSyncAt = Date.now() + intervalMs;
      syncsThisRun++;
      if (!cutoverDue() && (syncsThisRun >= (opts.syncsPerRun ?? DEFAULT_SYNCS_PER_RUN) || workflowInfo().continueAsNewSuggested)) {
        await condition(allHandlersFinished);
        return await continueAsNew<typeof warmMigration>(input, carry(), tuning);
      }
    }

    // Cutover: the source stops, the last changes are copied, then the guest is converted and launched.
    enter('CuttingOver');
    const shutdown = await transfer.shutdownSource({
      ...vmRef(),
      guestShutdown: opts.shutdownSource ?? true,
      timeoutSeconds: opts.shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_S,
    });
    state.shutdown = shutdown;
    if (shutdown.note) warnings.push(shutdown.note);
    const finalSync = await runSync('final');

    // The source is off and its disks final: inspect and convert now (the synced volumes are never written by the
    // conversion, which runs on clones of them).
    enter('GuestFixes');
    const inspection = await control.inspectSource(vmRef());
    if ((input.guest?.convert ?? 'auto') !== 'skip') state.guestInspection = await guest.inspection.inspectGuest(vmRef());
    // The disks are synced by now and the source is off: a contradiction is reported, not a reason to fail here.
    const refused = guestPreflight({ vmName: state.plan!.name, source: inspection, guest: state.guestInspection, convert: input.guest?.convert ?? 'auto' });
    if (refused) warnings.push(refused.message);
    const guestFix = await convertGuest(onHost.guest, {
      migrationId: input.migrationId,
      volumes: state.disks!.map((d) => d.volume!),
      inspection,
      guestInspection: state.guestInspection,
      plan: state.plan!,
      target: input.target,
      options: input.guest,
    });
    state.guestFix = guestFix;
    warnings.push(...guestFix.warnings);

    enter('Finalize');
    let instance = await onHost.control.finalize({
      migrationId: input.migrationId,
      project: input.target.project,
      instanceName: input.target.instanceName ?? state.plan!.name,
      flavor: state.plan!.flavor ?? input.target.flavor!,
      availabilityZone: input.target.availabilityZone,
      firmware: inspection.firmware,
      secureBoot: inspection.secureBoot,
      machineType: input.target.machineType,
      diskBus: input.target.diskBus,
      volumes: guestFix.bootVolumes,
      nics: state.plan!.nics,
      sourceVm: state.plan!.name,
      target: input.target.name,
      guestOs: state.guestInspection ? { family: state.guestInspection.osFamily, distro: state.guestInspection.distro } : undefined,
      keyName: input.target.keyName,
      deleteVolumesOnTermination: input.target.deleteVolumesOnTermination,
    });
    if (input.guest?.bootCheck) {
      state.validation = { bootCheck: await checkBoot(onHost.guest.validation, instance, input.guest.bootCheck) };
      if (!state.validation.bootCheck!.passed) warnings.push(`boot check failed: ${state.validation.bootCheck!.reason}`);
    }
    if (opts.startTarget) instance = await onHost.control.startInstance({ instance, project: instance.project, name: instance.name });
    state.instance = instance;

    enter('Completed');
    return { migrationId: input.migrationId, instance, cutover: state.cutover!, shutdown, finalSync, totals: state.totals!, guestFix };
  } catch (err) {
    if (err instanceof ContinueAsNew) {
      continuedAsNew = true;
      throw err; // not a failure: this run hands over to the next
    }
    if (isCancellation(err)) {
      // Stop syncing (done: the scope is cancelled), then give the workload back as it was.
      await CancellationScope.nonCancellable(async () => {
        if (!state.plan) return;
        await removeOurSnapshots().catch((e) => warnings.push(`could not remove vmigrate's snapshots: ${rootCauseMessage(e)}`));
        if (state.shutdown?.previousPowerState === 'poweredOn') {
          await control
            .restoreSourcePower({ ...vmRef(), powerState: 'poweredOn' })
            .catch((e) => warnings.push(`could not power the source VM back on: ${rootCauseMessage(e)}`));
        }
        // A cancelled warm migration keeps its synced volumes unless asked (they may be days of syncing); ports and
        // a half-built instance go either way.
        if (patched(TARGET_RELEASE_PATCH)) await releaseTarget(input, warnings, !opts.deleteVolumesOnCancel, onHost.control);
        else if (opts.deleteVolumesOnCancel) {
          const volumes = state.disks!.flatMap((d) => (d.volume ? [d.volume] : []));
          await onHost.control.deleteTargetVolumes({ volumes }).catch((e) => warnings.push(`could not delete the target volumes: ${rootCauseMessage(e)}`));
        }
      });
      enter('Cancelled');
      throw err;
    }
    const failedIn = state.stage;
    state.error = hostUnavailableReason(err, state.workerHost, tuning) ?? rootCauseMessage(err);
    if (state.plan) {
      await CancellationScope.nonCancellable(() =>
        removeOurSnapshots().catch((e) => {
          warnings.push(`could not remove vmigrate's snapshots: ${rootCauseMessage(e)}`);
          return { removed: [] };
        }),
      );
    }
    if (patched(TARGET_RELEASE_PATCH)) await CancellationScope.nonCancellable(() => releaseTarget(input, warnings, undefined, onHost.control));
    enter('Failed');
    throw migrationFailed(input.migrationId, failedIn, state.error, err);
  } finally {
    if (!continuedAsNew) await slot.ended();
  }
}
