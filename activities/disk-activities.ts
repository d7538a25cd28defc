import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { copyDisk, type CopyResult } from '../copy/copy-disk';
import { judgeSourceReadFailure, type SourceFaultHistory } from '../copy/source-fault-history';
import { SourceReadError } from '../copy/source-reader';
import { inspectDiskLayout, type DiskLayout } from '../guest/disk-layout';
import { openDiskExport, type DiskExport } from '../source/disk-export';
import type { VolumeRef } from '../targets/target-provider';
import type { ActivityDeps } from './activity-deps';
import { earlierRunStillValid, type EarlierRunOfDisk } from '../source/earlier-run';
import { failuresTranslated, SourceChangedError, SourceUnreadableError } from './failures';
import { withVmSession, type VmSession } from '../source/vsphere/vm-session';

export interface ExportSessionReport {
  disks: Array<{ key: number; exportSize: number; transport: string; allocationKnown: boolean; allocatedBytes?: number }>;
}

export interface SourceInspection {
  osFamily: 'linux' | 'windows' | 'other';
  guestId: string;
  firmware: 'bios' | 'efi';
  /** EFI with Secure Boot on, from vSphere (absent in inspections recorded before it was read: off). */
  secureBoot?: boolean;
  disks: Array<{ key: number; layout: DiskLayout }>;
}

/** What exportDisk heartbeats; `bytesDone` is the durable watermark a retried attempt resumes from. */
export interface ExportDiskProgress {
  disk: number;
  bytesDone: number;
  bytesTotal: number;
  bytesRead: number;
  bytesWritten: number;
  /** The target volume the watermark is about (once it exists). */
  volumeId?: string;
  /** Attempts that ended because the source failed a read on every try (see copy/source-fault-history.ts). */
  sourceFaults?: SourceFaultHistory;
}

export interface ExportDiskInput {
  migrationId: string;
  sourceId: string;
  vmMoref: string;
  diskKey: number;
  /** `name` is the configured target (absent: the default one). */
  target: { name?: string; project: string; volumeName: string; volumeType: string; availabilityZone?: string };
  /**
   * A retried migration: what the earlier run left of this disk, used only if the source VM has not been powered on
   * since `since` (its disk may have changed), the disk has the same size, and the kept volume is the same one.
   */
  earlierRun?: EarlierRunOfDisk<ExportDiskResult>;
}

export interface ExportDiskResult extends Omit<CopyResult, 'durationMs'> {
  disk: number;
  volume: VolumeRef;
  durationMs: number;
  attempt: number;
  /** The verified copy of an earlier run of this migration, whose volume was kept: nothing was read or written. */
  reused?: boolean;
}

export function createDiskActivities(deps: ActivityDeps) {
  /** Open each listed disk's export in turn (one nbdkit at a time) and hand it to `body`. */
  async function eachDiskExport<T>(
    session: VmSession,
    diskKeys: number[] | 'all',
    body: (disk: { key: number }, exp: DiskExport) => Promise<T>,
  ): Promise<T[]> {
    const hw = await session.client.getVmHardware(session.vm);
    await mkdir(deps.config.workDir, { recursive: true });
    const out: T[] = [];
    for (const disk of hw.disks.filter((d) => diskKeys === 'all' || diskKeys.includes(d.key))) {
      const exp = await openDiskExport({ source: session.source, session: session.client, vm: hw, disk, workDir: deps.config.workDir, connections: 1 });
      try {
        out.push(await body(disk, exp));
      } finally {
        await exp.close();
      }
    }
    return out;
  }

  return {
    /** Export stage: open an export session per disk and check it serves the disk's full capacity. */
    async openExport(input: { sourceId: string; vmMoref: string }): Promise<ExportSessionReport> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async (session) => {
          const disks = await eachDiskExport(session, 'all', async (disk, exp) => {
            const conn = exp.connections[0];
            let allocatedBytes: number | undefined;
            if (conn.canBlockStatus) {
              allocatedBytes = 0;
              for (let off = 0; off < exp.size; ) {
                const extents = await conn.extents(off, exp.size - off);
                const end = extents.length ? extents[extents.length - 1].offset + extents[extents.length - 1].length : off;
                if (end <= off) throw new Error(`export of disk ${disk.key} answered block status at ${off} without progress`);
                for (const e of extents) if (!e.zero) allocatedBytes += e.length;
                off = end;
                Context.current().heartbeat();
              }
            }
            return {
              key: disk.key,
              exportSize: exp.size,
              transport: session.source.transport.plugin,
              allocationKnown: conn.canBlockStatus,
              allocatedBytes,
            };
          });
          return { disks };
        }),
      );
    },

    /** Inspect stage: guest OS family and firmware from vSphere, partition tables and file systems from the disks. */
    async inspectSource(input: { sourceId: string; vmMoref: string }): Promise<SourceInspection> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async (session) => {
          const hw = await session.client.getVmHardware(session.vm);
          const disks = await eachDiskExport(session, 'all', async (disk, exp) => ({
            key: disk.key,
            layout: await inspectDiskLayout((off, len) => exp.connections[0].read(off, len), exp.size),
          }));
          const family = (hw.guestFamily ?? '').toLowerCase();
          const osFamily = family.startsWith('windows') || hw.guestId.startsWith('win') ? 'windows' : family.startsWith('linux') ? 'linux' : 'other';
          return { osFamily, guestId: hw.guestId, firmware: hw.firmware, secureBoot: hw.secureBoot, disks };
        }),
      );
    },

    /**
     * Write Volume stage: create the target volume (idempotent) and stream the source disk into it. Heartbeats carry
     * the durable watermark; a retried attempt resumes from the last one the server recorded.
     */
    async exportDisk(input: ExportDiskInput): Promise<ExportDiskResult> {
      const ctx = Context.current();
      const heartbeat = ctx.info.heartbeatDetails as ExportDiskProgress | undefined;
      // An earlier attempt of this activity knows best; otherwise a retried migration's earlier run, once checked.
      let resume = heartbeat;
      let last: ExportDiskProgress = {
        disk: input.diskKey,
        bytesDone: resume?.bytesDone ?? 0,
        bytesTotal: resume?.bytesTotal ?? 0,
        bytesRead: 0,
        bytesWritten: 0,
      };
      // Every heartbeat carries the durable watermark, so even one sent during setup keeps the resume point.
      const beat = (p: Partial<ExportDiskProgress> = {}) => {
        last = { ...last, ...p };
        ctx.heartbeat(last);
      };
      beat();
      const copy = failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async (session) => {
          const hw = await session.client.getVmHardware(session.vm);
          const disk = hw.disks.find((d) => d.key === input.diskKey);
          if (!disk) throw new SourceChangedError(`VM ${input.vmMoref} no longer has the disk with key ${input.diskKey} it had at preflight`);
          beat({ bytesTotal: disk.capacityBytes });
          const provider = deps.targets.get(input.target.name);
          const earlier = !heartbeat && input.earlierRun ? await earlierRunStillValid(session.client, session.vm, disk.capacityBytes, input.earlierRun) : undefined;
          if (earlier && !earlier.valid) ctx.log.warn('not picking up what the earlier run left of this disk; copying it anew', { disk: disk.key, reason: earlier.reason });
          if (earlier?.valid && input.earlierRun?.copy) {
            const kept = await provider.findVolume(input.target.project, { migrationId: input.migrationId, disk: String(disk.key) });
            if (kept && kept.id === input.earlierRun.copy.volume.id) {
              ctx.log.info('disk already copied and verified by an earlier run; not copied again', { disk: disk.key, volume: kept.name });
              return { ...input.earlierRun.copy, bytesRead: 0, bytesWritten: 0, durationMs: 0, attempt: ctx.info.attempt, reused: true };
            }
          }
          const volume = await provider.createVolume({
            project: input.target.project,
            name: input.target.volumeName,
            sizeBytes: disk.capacityBytes,
            volumeType: input.target.volumeType,
            availabilityZone: input.target.availabilityZone,
            owner: { migrationId: input.migrationId, disk: String(disk.key) },
            metadata: { sourceVm: hw.name, sourceDisk: disk.fileName },
          });
          // The earlier run's watermark counts only in the volume it was written to.
          if (earlier?.valid && input.earlierRun?.resumeFrom && input.earlierRun.volumeId === volume.id) {
            resume = { disk: disk.key, bytesDone: input.earlierRun.resumeFrom, bytesTotal: disk.capacityBytes, bytesRead: 0, bytesWritten: 0, volumeId: volume.id };
            beat({ bytesDone: resume.bytesDone });
          }
          beat({ volumeId: volume.id });
          const workDir = path.join(deps.config.workDir, input.migrationId);
          await mkdir(workDir, { recursive: true });
          const exp = await openDiskExport({ source: session.source, session: session.client, vm: hw, disk, workDir: deps.config.workDir });
          try {
            beat();
            const target = await provider.openVolume(volume);
            try {
              const startedAt = resume?.bytesDone ?? 0;
              ctx.log.info('copying disk', { disk: disk.key, resumeFrom: startedAt, attempt: ctx.info.attempt });
              try {
                const result = await copyDisk(exp.connections, target, {
                  resumeFrom: startedAt,
                  digestLogPath: path.join(workDir, `disk-${disk.key}.digests`),
                  signal: ctx.cancellationSignal,
                  reopenSource: (index) => exp.reconnect(index),
                  onCheckpoint: (p) => beat({ bytesDone: p.bytesDone, bytesRead: p.bytesRead, bytesWritten: p.bytesWritten }),
                  onProgress: (p) => beat({ bytesRead: p.bytesRead, bytesWritten: p.bytesWritten }),
                });
                if (result.readRetries > 0) ctx.log.warn('source reads failed and were tried again', { disk: disk.key, retries: result.readRetries, reconnects: result.reconnects });
                return { ...result, disk: disk.key, volume, attempt: ctx.info.attempt };
              } catch (err) {
                if (!(err instanceof SourceReadError)) throw err;
                // The copy published its watermark before failing; whether to try again depends on the attempts before.
                const verdict = judgeSourceReadFailure(heartbeat?.sourceFaults, err, startedAt, last.bytesDone, `disk ${disk.key} (${disk.fileName})`);
                beat({ sourceFaults: verdict.history });
                ctx.log.warn('source read failed on every try', { disk: disk.key, offset: err.offset, attempt: ctx.info.attempt, permanent: verdict.permanent });
                throw verdict.permanent ? new SourceUnreadableError(verdict.message) : Object.assign(err, { message: verdict.message });
              }
            } finally {
              await target.close();
            }
          } finally {
            await exp.close();
          }
        }),
      );
      // A copy that ends without completing still reports how far it durably got, in its failure's details.
      return copy.catch((err) => {
        throw withProgressDetails(err, last);
      });
    },
  };
}

/** The same failure, carrying the copy's last progress as details (history keeps failure details; the API reads them). */
function withProgressDetails(err: unknown, progress: ExportDiskProgress): unknown {
  if (err instanceof CancelledFailure) return new CancelledFailure(err.message, [progress], err.cause);
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({ type: err.type ?? undefined, message: err.message, nonRetryable: err.nonRetryable ?? undefined, details: [progress], cause: err.cause });
  }
  if (err instanceof Error) return ApplicationFailure.create({ type: err.name, message: err.message, details: [progress], cause: err });
  return err;
}
