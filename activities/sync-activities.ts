import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { copyAreas, type ByteArea } from '../copy/copy-areas';
import type { CopyResult } from '../copy/copy-options';
import { openDiskExport } from '../source/disk-export';
import type { VolumeRef } from '../targets/target-provider';
import { ChangedAreasError, queryAllChangedAreas } from '../vsphere/changed-areas';
import { VimFaultError } from '../vsphere/vim-faults';
import type { VimClient } from '../vsphere/vim-client';
import type { MoRef } from '../vsphere/vim-types';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated, PreflightError, SnapshotGoneError, SourceChangedError, SourceUnreadableError } from './failures';
import { judgeSourceReadFailure, type SourceFaultHistory } from '../copy/source-fault-history';
import { SourceReadError } from '../copy/source-reader';
import { withVmSession } from '../source/vsphere/vm-session';

/**
 * Warm migration's data path: Changed Block Tracking on the source, one snapshot per sync, and the copy of the
 * snapshot's areas (all allocated ones for a full sync, the changed ones for an incremental sync) into the target
 * volumes at the same offsets.
 */

export interface ChangeTrackingReport {
  enabledBefore: boolean;
  warnings: string[];
}

export interface SyncSnapshot {
  /** Managed object id of the snapshot, e.g. "snapshot-42". */
  snapshot: string;
  name: string;
  /** Per disk: the change id CBT gave this point in time (absent when tracking is not active on the disk). */
  disks: Array<{ key: number; capacityBytes: number; changeId?: string }>;
}

export type SyncMode = 'full' | 'incremental';

export interface SyncDiskInput {
  migrationId: string;
  sourceId: string;
  vmMoref: string;
  snapshot: string;
  diskKey: number;
  /** The change id of the last completed sync of this disk; absent for the first (full) sync. */
  sinceChangeId?: string;
  /** Why the workflow asks for a full sync of a disk that was synced before (CBT reset, capacity change, …). */
  fullSyncReason?: string;
  /** `target` names the configured target (absent: the default one). */
  volume: { target?: string; project: string; name: string; volumeType: string; availabilityZone?: string };
  /**
   * A retried migration: the volume an earlier run synced to `sinceChangeId`. Changes since then are copied only into
   * that very volume; if it is gone, the disk is synced in full.
   */
  keptVolumeId?: string;
  /** A retried migration's full sync into a volume an earlier run may have written: clear what the source does not hold. */
  clearStaleData?: boolean;
}

/** What syncDisk heartbeats; a retry resumes from `bytesDone` when it copies in the same mode. */
export interface SyncDiskProgress {
  disk: number;
  mode: SyncMode;
  bytesDone: number;
  areaBytes: number;
  bytesRead: number;
  bytesWritten: number;
  /** Attempts that ended because the source failed a read on every try (see copy/source-fault-history.ts). */
  sourceFaults?: SourceFaultHistory;
}

export interface SyncDiskResult {
  disk: number;
  mode: SyncMode;
  /** Why this was a full sync although an incremental one was asked for (or the workflow's own reason). */
  fullSyncReason?: string;
  /** The snapshot's change id for this disk: what the next incremental sync starts from. */
  changeId?: string;
  volume: VolumeRef;
  areas: number;
  /** Bytes CBT reported (changed, or allocated for a full sync). */
  areaBytes: number;
  bytesRead: number;
  bytesWritten: number;
  bytesZeroed: number;
  queryWindows: number;
  queryMs: number;
  copyMs: number;
  durationMs: number;
  /** Epoch ms of the first source byte read (cutover overhead). */
  firstByteAt?: number;
  resumedFrom: number;
  attempt: number;
  verification: CopyResult['verification'];
}

export interface ShutdownSourceResult {
  previousPowerState: string;
  method: 'already-off' | 'guest-shutdown' | 'power-off';
  /** Why a guest shutdown was not used or did not finish. */
  note?: string;
  durationMs: number;
}

const SNAPSHOT_PREFIX = (migrationId: string) => `vmigrate-${migrationId}-`;
const snapRef = (value: string): MoRef => ({ type: 'VirtualMachineSnapshot', value });

/** The uuid part of "<uuid>/<n>": a different one means CBT was reset in between. */
const changeEpoch = (changeId: string) => changeId.slice(0, changeId.lastIndexOf('/'));

export function createSyncActivities(deps: ActivityDeps) {
  return {
    /** Turn CBT on if it is off. VMware does not support enabling it while the VM has snapshots. */
    async prepareChangeTracking(input: { sourceId: string; vmMoref: string; migrationId: string }): Promise<ChangeTrackingReport> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm }) => {
          const hw = await client.getVmHardware(vm);
          if (hw.changeTrackingEnabled) return { enabledBefore: true, warnings: [] };
          const foreign = (await client.listSnapshots(vm)).filter((s) => !s.name.startsWith(SNAPSHOT_PREFIX(input.migrationId)));
          if (foreign.length) {
            throw new PreflightError(
              `Changed Block Tracking is off on VM ${hw.name} and it has ${foreign.length} snapshot(s) (${foreign.map((s) => s.name).join(', ')}); ` +
                'VMware does not support enabling CBT while snapshots exist: delete or consolidate them, or enable CBT yourself, then retry',
            );
          }
          await client.setChangeTracking(vm, true);
          return {
            enabledBefore: false,
            warnings: [`Changed Block Tracking was off on VM ${hw.name}; vmigrate enabled it (the first sync copies every allocated block)`],
          };
        }),
      );
    },

    /** A snapshot for sync number `sync`; a retried call finds the one its earlier attempt made instead of adding one. */
    async createSyncSnapshot(input: { sourceId: string; vmMoref: string; migrationId: string; sync: number; purpose: string }): Promise<SyncSnapshot> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm }) => {
          const name = `${SNAPSHOT_PREFIX(input.migrationId)}sync-${input.sync}`;
          const existing = (await client.listSnapshots(vm)).find((s) => s.name === name);
          const snapshot = existing?.snapshot ?? (await client.createSnapshot(vm, name, `vmigrate ${input.purpose} for migration ${input.migrationId}`));
          const disks = await client.getSnapshotDisks(snapshot);
          return { snapshot: snapshot.value, name, disks: disks.map((d) => ({ key: d.key, capacityBytes: d.capacityBytes, changeId: d.changeId })) };
        }),
      );
    },

    /** Remove this migration's snapshots (all of them, or all but `keep`); other snapshots are never touched. */
    async removeSyncSnapshots(input: { sourceId: string; vmMoref: string; migrationId: string; keep?: string[] }): Promise<{ removed: string[] }> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm }) => {
          const ours = (await client.listSnapshots(vm)).filter((s) => s.name.startsWith(SNAPSHOT_PREFIX(input.migrationId)));
          const removed: string[] = [];
          for (const s of ours) {
            if (input.keep?.includes(s.snapshot.value)) continue;
            await client.removeSnapshot(s.snapshot);
            removed.push(s.name);
            Context.current().heartbeat({ removed });
          }
          return { removed };
        }),
      );
    },

    /**
     * One disk of one sync: ask CBT which areas to copy (looping over its windows), then copy them from the
     * snapshot's frozen view into the target volume at the same offsets. Anything that makes CBT's answer
     * untrustworthy (a fault, windows that do not reach the capacity, an area outside the disk, a change id of
     * another epoch) turns the sync into a full one: never a silent skip. Transport errors are thrown for Temporal to
     * retry.
     */
    async syncDisk(input: SyncDiskInput): Promise<SyncDiskResult> {
      const ctx = Context.current();
      const startedAt = Date.now();
      const resume = ctx.info.heartbeatDetails as SyncDiskProgress | undefined;
      let last: SyncDiskProgress | undefined;
      const beat = (p: Partial<SyncDiskProgress>) => {
        last = { ...(last ?? { disk: input.diskKey, mode: 'full', bytesDone: 0, areaBytes: 0, bytesRead: 0, bytesWritten: 0 }), ...p };
        ctx.heartbeat(last);
      };
      // Keep the resume point alive through setup: a crash before the copy starts must not lose it.
      if (resume) ctx.heartbeat(resume);
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm, source }) => {
          const hw = await client.getVmHardware(vm);
          const snapshot = snapRef(input.snapshot);
          const disks = await client.getSnapshotDisks(snapshot).catch((err) => {
            if (err instanceof VimFaultError && err.faultType === 'ManagedObjectNotFound') {
              throw new SnapshotGoneError(`snapshot ${input.snapshot} of VM ${input.vmMoref} is gone; the sync is redone from a new snapshot`);
            }
            throw err;
          });
          const disk = disks.find((d) => d.key === input.diskKey);
          if (!disk) throw new SourceChangedError(`snapshot ${input.snapshot} has no disk with key ${input.diskKey}`);

          // The export (nbdkit start, NBD handshakes) opens while CBT is asked: at cutover this is downtime.
          await mkdir(deps.config.workDir, { recursive: true });
          const copyStarted = Date.now();
          const exporting = openDiskExport({ source, session: client, vm: hw, disk, workDir: deps.config.workDir, snapshotMoref: input.snapshot });
          exporting.catch(() => undefined); // awaited below; a failure while CBT is queried must not go unhandled
          try {
            const provider = deps.targets.get(input.volume.target);
            const volume = await provider.createVolume({
              project: input.volume.project,
              name: input.volume.name,
              sizeBytes: disk.capacityBytes,
              volumeType: input.volume.volumeType,
              availabilityZone: input.volume.availabilityZone,
              owner: { migrationId: input.migrationId, disk: String(disk.key) },
              metadata: { sourceVm: hw.name, sourceDisk: hw.disks.find((d) => d.key === disk.key)?.fileName ?? disk.fileName },
            });
            if (volume.sizeBytes < disk.capacityBytes) {
              throw new SourceChangedError(`disk ${disk.key} grew to ${disk.capacityBytes} bytes but its target volume holds ${volume.sizeBytes}`);
            }
            // Changes since the earlier run's change id belong in the very volume it synced; any other gets everything.
            if (input.keptVolumeId && input.sinceChangeId && volume.id !== input.keptVolumeId) {
              input = { ...input, sinceChangeId: undefined, clearStaleData: true, fullSyncReason: `the volume ${input.keptVolumeId} an earlier run synced is gone` };
            }
            const plan = await changedAreasToCopy(client, vm, snapshot, disk, input);
            const resumeFrom = resume && resume.mode === plan.mode && resume.disk === disk.key ? resume.bytesDone : 0;
            beat({ mode: plan.mode, bytesDone: resumeFrom });

            const exp = await exporting;
            const target = await provider.openVolume(volume);
            try {
              ctx.log.info('syncing disk', { disk: disk.key, mode: plan.mode, areas: plan.areas.length, resumeFrom, attempt: ctx.info.attempt });
              // A first full sync writes into a fresh (zero) volume; a resync must clear what CBT no longer reports,
              // and an incremental one writes zeros where the guest zeroed blocks.
              const resync = plan.mode === 'full' && (!!input.sinceChangeId || !!input.clearStaleData);
              const workDir = path.join(deps.config.workDir, input.migrationId);
              await mkdir(workDir, { recursive: true });
              const copy = await copyAreas(exp.connections, target, {
                areas: plan.areas,
                freshTarget: plan.mode === 'full' && !resync,
                zeroOutside: resync,
                resumeFrom,
                digestLogPath: path.join(workDir, `sync-disk-${disk.key}.digests`),
                reopenSource: (index) => exp.reconnect(index),
                signal: ctx.cancellationSignal,
                onCheckpoint: (c) => beat({ bytesDone: c.bytesDone, areaBytes: c.areaBytes, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten }),
                onProgress: (c) => beat({ areaBytes: c.areaBytes, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten }),
              }).catch((err: unknown) => {
                if (!(err instanceof SourceReadError)) throw err;
                const previous = resume && resume.mode === plan.mode ? resume.sourceFaults : undefined;
                const verdict = judgeSourceReadFailure(previous, err, resumeFrom, last?.bytesDone ?? resumeFrom, `disk ${disk.key} (${disk.fileName}) of snapshot ${input.snapshot}`);
                beat({ sourceFaults: verdict.history });
                throw verdict.permanent ? new SourceUnreadableError(verdict.message) : Object.assign(err, { message: verdict.message });
              });
              return {
                disk: disk.key,
                mode: plan.mode,
                fullSyncReason: plan.fullSyncReason,
                changeId: disk.changeId,
                volume,
                areas: copy.areas,
                areaBytes: copy.areaBytes,
                bytesRead: copy.bytesRead,
                bytesWritten: copy.bytesWritten,
                bytesZeroed: copy.bytesZeroed,
                queryWindows: plan.windows,
                queryMs: plan.queryMs,
                copyMs: Date.now() - copyStarted,
                durationMs: Date.now() - startedAt,
                firstByteAt: copy.firstByteAt,
                resumedFrom: copy.resumedFrom,
                attempt: ctx.info.attempt,
                verification: copy.verification,
              };
            } finally {
              await target.close();
            }
          } finally {
            await (await exporting.catch(() => undefined))?.close();
          }
        }),
      );
    },

    /**
     * Cutover: stop the source. A guest shutdown first (clean file systems), and a hard power-off when the guest does
     * not go down within the timeout or cannot be asked (no VMware Tools).
     */
    async shutdownSource(input: { sourceId: string; vmMoref: string; guestShutdown: boolean; timeoutSeconds: number }): Promise<ShutdownSourceResult> {
      const ctx = Context.current();
      const started = Date.now();
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async ({ client, vm }) => {
          const previousPowerState = await client.getPowerState(vm);
          if (previousPowerState === 'poweredOff') return { previousPowerState, method: 'already-off' as const, durationMs: Date.now() - started };
          let note: string | undefined;
          if (input.guestShutdown) {
            try {
              await client.shutdownGuest(vm);
              const deadline = Date.now() + input.timeoutSeconds * 1000;
              while (Date.now() < deadline) {
                if ((await client.getPowerState(vm)) === 'poweredOff') {
                  return { previousPowerState, method: 'guest-shutdown' as const, durationMs: Date.now() - started };
                }
                ctx.heartbeat({ waitingForGuestShutdown: true });
                await new Promise((r) => setTimeout(r, 250));
              }
              note = `the guest did not shut down within ${input.timeoutSeconds} s; powered off instead`;
            } catch (err) {
              if (!(err instanceof VimFaultError)) throw err;
              note = `guest shutdown was refused (${err.faultType}: ${err.message}); powered off instead`;
            }
          } else {
            note = 'guest shutdown is off for this migration';
          }
          if ((await client.getPowerState(vm)) !== 'poweredOff') await client.powerOff(vm, { timeoutMs: 4 * 60_000 });
          return { previousPowerState, method: 'power-off' as const, note, durationMs: Date.now() - started };
        }),
      );
    },
  };
}

/**
 * Which areas a sync copies: CBT's changes since the last change id, or every allocated area for a full sync.
 * Anything that makes CBT's answer untrustworthy (a fault, windows that do not reach the capacity, an area outside
 * the disk, a change id of another epoch) makes it a full sync; transport errors are thrown, for a retry.
 */
async function changedAreasToCopy(
  client: VimClient,
  vm: MoRef,
  snapshot: MoRef,
  disk: { key: number; capacityBytes: number; changeId?: string },
  input: Pick<SyncDiskInput, 'sinceChangeId' | 'fullSyncReason'>,
): Promise<{ mode: SyncMode; fullSyncReason?: string; areas: ByteArea[]; windows: number; queryMs: number }> {
  const started = Date.now();
  const query = (changeId: string) => queryAllChangedAreas(client, { vm, snapshot, deviceKey: disk.key, capacityBytes: disk.capacityBytes, changeId });
  const untrustworthy = (err: unknown): err is Error => err instanceof ChangedAreasError || err instanceof VimFaultError;
  let fullSyncReason = input.fullSyncReason;
  if (input.sinceChangeId && !fullSyncReason) {
    if (!disk.changeId) fullSyncReason = 'the snapshot carries no change id (Changed Block Tracking is not active on the disk)';
    else if (changeEpoch(disk.changeId) !== changeEpoch(input.sinceChangeId)) {
      fullSyncReason = `Changed Block Tracking was reset: change id ${input.sinceChangeId} belongs to an earlier epoch than ${disk.changeId}`;
    } else {
      try {
        const answer = await query(input.sinceChangeId);
        return { mode: 'incremental', ...answer, queryMs: Date.now() - started };
      } catch (err) {
        if (!untrustworthy(err)) throw err;
        fullSyncReason = `the changed-block query since ${input.sinceChangeId} was not trustworthy (${err.message})`;
      }
    }
  }
  try {
    const answer = await query('*');
    return { mode: 'full', fullSyncReason, ...answer, queryMs: Date.now() - started };
  } catch (err) {
    if (!untrustworthy(err)) throw err;
    // Without an allocation map, copy the whole disk: slower, never wrong.
    Context.current().log.warn('allocated-area query failed; copying the whole disk', { disk: disk.key, error: err.message });
    return { mode: 'full', fullSyncReason, areas: [{ start: 0, length: disk.capacityBytes }], windows: 0, queryMs: Date.now() - started };
  }
}
