import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ConfigError } from '../config/vmigrate-config';
import { copyDisk } from '../copy/copy-disk';
import { inspectDiskLayout } from '../guest/disk-layout';
import { inspectGuestDisks, type GuestInspection } from '../guest/libguestfs-inspection';
import type { NetworkMapping, TargetSpec } from '../shared/migration-input';
import { checkFlavorFits } from '../targets/flavor-fit';
import { planFirmware } from '../targets/firmware-plan';
import type { AgentGateway, AgentSession } from '../source/agent/agent-gateway';
import { openAgentDiskExport } from '../source/agent/agent-disk-export';
import { agentMachinePlan, planAgentNics } from '../source/agent/agent-machine-plan';
import { AGENT_WAIT_MS, agentSource } from '../source/agent/agent-source';
import type { DiscoveredMachine } from '../source/agent/discovered-machine';
import type { DiskExport } from '../source/disk-export';
import type { ActivityDeps } from './activity-deps';
import type { ExportDiskProgress, ExportDiskResult, ExportSessionReport, SourceInspection } from './disk-activities';
import { failuresTranslated, PreflightError } from './failures';
import type { SourceVmPlan } from './vm-activities';

/** The piece size of the digests that tell whether a disk changed between two runs of the agent. */
const CHANGE_CHECK_SEGMENT = 16 * 1024 * 1024;

export interface AgentDiskProgress extends ExportDiskProgress {
  /** The agent run (boot) the watermark's bytes were read from. */
  runId?: string;
  /** Set once a run found the disk changed since an earlier run copied part of it. */
  sourceChanged?: string;
}

export interface AgentDiskResult extends ExportDiskResult {
  runId: string;
  /** The disk changed between two runs of the agent and was copied again from the start (what was found). */
  sourceChanged?: string;
}

export function createAgentActivities(deps: ActivityDeps) {
  const gateway = (): AgentGateway => {
    if (!deps.agentGateway) throw new ConfigError('this worker runs no agent gateway (agents.gateway in the configuration): agent migrations need the worker that does');
    return deps.agentGateway;
  };
  /** The machine's agent session, heartbeating while it waits for the agent to connect. */
  const awaitAgent = async (machineId: string): Promise<AgentSession> => {
    const ctx = Context.current();
    const timer = setInterval(() => ctx.heartbeat({ waitingFor: `the agent of machine ${machineId}` }), 5000);
    try {
      return await gateway().session(machineId, { timeoutMs: AGENT_WAIT_MS, signal: ctx.cancellationSignal });
    } finally {
      clearInterval(timer);
    }
  };
  /** Each disk in turn through the agent source (one connection each), for the short reads of Export and Inspect. */
  const eachDisk = async <T>(session: AgentSession, body: (disk: number, exp: DiskExport) => Promise<T>): Promise<T[]> => {
    const source = agentSource(gateway());
    const out: T[] = [];
    for (const d of (await source.planMachine(session.machineId)).disks) {
      const exp = await source.openDisk(session.machineId, d.key, { connections: 1, workDir: deps.config.workDir, signal: Context.current().cancellationSignal });
      try {
        out.push(await body(d.key, exp));
      } finally {
        await exp.close();
      }
    }
    return out;
  };

  return {
    /** Queued: the machine's plan in the target — flavor (asked for, or the smallest that fits), NICs, firmware. */
    async planAgentMachine(input: { machineId: string; machine: DiscoveredMachine; target: TargetSpec }): Promise<SourceVmPlan> {
      return failuresTranslated(async () => {
        const plan = agentMachinePlan(input.machineId, input.machine);
        const vcpus = plan.hardware.sockets * plan.hardware.coresPerSocket;
        const memoryMB = Math.ceil(plan.hardware.memoryBytes / (1024 * 1024));
        const nics = planAgentNics(plan.hardware.nics, input.target.networks as NetworkMapping[]);
        const provider = deps.targets.get(input.target.name);
        const fit = checkFlavorFits(await provider.listFlavors(input.target.project), input.target.flavor, { name: plan.name, vcpus, memoryMB });
        if (!fit.ok) throw new PreflightError(fit.reason);
        const firmware = planFirmware({ firmware: plan.hardware.firmware, secureBoot: false }, input.target.machineType);
        if (!firmware.ok) throw new PreflightError(firmware.reason);
        const warnings = await provider.checkPlacement({
          project: input.target.project,
          volumeType: input.target.volumeType,
          availabilityZone: input.target.availabilityZone,
          volumeAvailabilityZone: input.target.volumeAvailabilityZone,
          nics,
        });
        if (plan.guest.encrypted) warnings.push('an encrypted disk was found: it is copied as it is; it decrypts in the target only if its key is not kept in the source machine (a TPM)');
        return {
          moref: input.machineId,
          name: plan.name,
          guestId: plan.guest.distro ?? plan.guest.family,
          guestFamily: plan.guest.family,
          firmware: plan.hardware.firmware,
          secureBoot: false,
          numCPU: vcpus,
          memoryMB,
          // Booted from the agent's ISO: the machine's own OS is not running.
          powerState: 'poweredOff',
          disks: plan.disks.map((d) => ({ key: d.key, label: d.label, capacityBytes: d.capacityBytes, fileName: `${d.label} (${d.serial ?? 'no serial'})` })),
          nics,
          flavor: fit.flavor.name,
          warnings,
          capabilities: plan.capabilities,
        };
      });
    },

    /** Export: the agent is connected and serves every disk at the size it reported. */
    async openAgentExport(input: { machineId: string }): Promise<ExportSessionReport & { runId: string }> {
      return failuresTranslated(async () => {
        const session = await awaitAgent(input.machineId);
        const disks = await eachDisk(session, async (disk, exp) => ({ key: disk, exportSize: exp.size, transport: 'agent', allocationKnown: false }));
        session.tell('the destination reads the disks now; do not power this machine off');
        return { disks, runId: session.runId };
      });
    },

    /** Inspect: partition tables and file systems through the agent, then libguestfs over the same NBD sockets. */
    async inspectAgentSource(input: { machineId: string; guest: boolean }): Promise<{ inspection: SourceInspection; guestInspection?: GuestInspection }> {
      const ctx = Context.current();
      return failuresTranslated(async () => {
        const session = await awaitAgent(input.machineId);
        const plan = agentMachinePlan(input.machineId, session.machine);
        const layouts = await eachDisk(session, async (disk, exp) => ({ key: disk, layout: await inspectDiskLayout((off, len) => exp.connections[0].read(off, len), exp.size) }));
        const inspection: SourceInspection = {
          osFamily: plan.guest.family,
          guestId: plan.guest.distro ?? plan.guest.family,
          firmware: plan.hardware.firmware,
          secureBoot: false,
          disks: layouts,
        };
        if (!input.guest) return { inspection };
        ctx.heartbeat({ stage: 'libguestfs inspection' });
        const guestInspection = await inspectGuestDisks({
          drives: session.machine.disks.map((d) => ({ uri: `nbd://?socket=${session.diskSocket(d.index)}`, format: 'raw' as const })),
          layouts: layouts.map((l) => l.layout),
          signal: ctx.cancellationSignal,
          onTick: () => ctx.heartbeat({ stage: 'libguestfs inspection' }),
        });
        return { inspection, guestInspection };
      });
    },

    /**
     * Write Volume: the disk into its volume, resuming from the durable watermark. The watermark is trusted only for
     * the agent run that read it; a later run (the machine rebooted) first compares digests of what was copied, on
     * the machine and in the volume, and copies the disk again from the start if they differ.
     */
    async copyAgentDisk(input: {
      migrationId: string;
      machineId: string;
      diskKey: number;
      target: { name?: string; project: string; volumeName: string; volumeType: string; availabilityZone?: string };
    }): Promise<AgentDiskResult> {
      const ctx = Context.current();
      const heartbeat = ctx.info.heartbeatDetails as AgentDiskProgress | undefined;
      let last: AgentDiskProgress = {
        disk: input.diskKey,
        bytesDone: heartbeat?.bytesDone ?? 0,
        bytesTotal: heartbeat?.bytesTotal ?? 0,
        bytesRead: 0,
        bytesWritten: 0,
        runId: heartbeat?.runId,
        ...(heartbeat?.volumeId ? { volumeId: heartbeat.volumeId } : {}),
        ...(heartbeat?.sourceChanged ? { sourceChanged: heartbeat.sourceChanged } : {}),
      };
      const beat = (p: Partial<AgentDiskProgress> = {}) => {
        last = { ...last, ...p };
        ctx.heartbeat(last);
      };
      beat();
      return failuresTranslated(async () => {
        const session = await awaitAgent(input.machineId);
        const facts = session.machine.disks.find((d) => d.index === input.diskKey);
        if (!facts) throw new PreflightError(`machine ${input.machineId} has no disk ${input.diskKey} any more (the agent found other disks this time)`);
        const provider = deps.targets.get(input.target.name);
        const volume = await provider.createVolume({
          project: input.target.project,
          name: input.target.volumeName,
          sizeBytes: facts.sizeBytes,
          volumeType: input.target.volumeType,
          availabilityZone: input.target.availabilityZone,
          owner: { migrationId: input.migrationId, disk: String(input.diskKey) },
          metadata: { sourceMachine: input.machineId, sourceDisk: `${facts.name} ${facts.serial ?? ''}`.trim() },
        });
        let resumeFrom = last.volumeId === volume.id && last.bytesTotal === facts.sizeBytes ? last.bytesDone : 0;
        const workDir = path.join(deps.config.workDir, input.migrationId);
        const digestLogPath = path.join(workDir, `disk-${input.diskKey}.digests`);
        await mkdir(workDir, { recursive: true });
        const target = await provider.openVolume(volume);
        // Bytes an earlier run wrote above its watermark (or below it, if the disk changed) came from another state of
        // the disk: then zeros are written too, not assumed.
        const sameRun = last.runId === undefined || last.runId === session.runId;
        try {
          if (resumeFrom > 0 && !sameRun) {
            const changed = await changedSince(session, input.diskKey, resumeFrom, target, ctx.cancellationSignal, () => ctx.heartbeat(last));
            if (changed) {
              const why = `disk ${input.diskKey} changed on the machine since an earlier boot of the agent copied ${resumeFrom} bytes of it (${changed}); copying it again from the start`;
              ctx.log.warn(why, { disk: input.diskKey });
              session.tell(`disk ${input.diskKey} changed since the last boot: it is copied again from the start`);
              resumeFrom = 0;
              await rm(digestLogPath, { force: true });
              await rm(`${digestLogPath}.json`, { force: true });
              last.sourceChanged = why;
            } else {
              ctx.log.info('disk unchanged since the earlier boot of the agent; resuming', { disk: input.diskKey, resumeFrom });
            }
          }
          beat({ volumeId: volume.id, bytesTotal: facts.sizeBytes, bytesDone: resumeFrom, runId: session.runId });
          const exp = await openAgentDiskExport(session, input.diskKey, 4, () => gateway().current(session.machineId));
          try {
            ctx.log.info('copying disk from the agent', { disk: input.diskKey, resumeFrom, attempt: ctx.info.attempt, runId: session.runId });
            const result = await copyDisk(exp.connections, target, {
              resumeFrom,
              freshTarget: sameRun && !last.sourceChanged,
              digestLogPath,
              signal: ctx.cancellationSignal,
              reopenSource: (index) => exp.reconnect(index),
              onCheckpoint: (p) => beat({ bytesDone: p.bytesDone, bytesRead: p.bytesRead, bytesWritten: p.bytesWritten }),
              onProgress: (p) => beat({ bytesRead: p.bytesRead, bytesWritten: p.bytesWritten }),
            });
            return { ...result, disk: input.diskKey, volume, attempt: ctx.info.attempt, runId: session.runId, ...(last.sourceChanged ? { sourceChanged: last.sourceChanged } : {}) };
          } finally {
            await exp.close();
          }
        } finally {
          await target.close();
        }
      });
    },

    /** A line on the machine's console (best effort: the agent may be gone). */
    async tellAgent(input: { machineId: string; text: string }): Promise<boolean> {
      const session = deps.agentGateway?.current(input.machineId);
      session?.tell(input.text);
      return !!session;
    },
  };
}

/**
 * Whether [0, length) of the disk differs between the machine and the volume: SHA-256 per segment on both sides,
 * computed where the bytes are. Returns where the first difference is, or undefined.
 */
async function changedSince(
  session: AgentSession,
  disk: number,
  length: number,
  target: { read(offset: number, length: number): Promise<Buffer> },
  signal: AbortSignal,
  tick: () => void,
): Promise<string | undefined> {
  const remote = session.digestRange(disk, { offset: 0, length, segment: CHANGE_CHECK_SEGMENT }, signal);
  const local: string[] = [];
  for (let off = 0; off < length; off += CHANGE_CHECK_SEGMENT) {
    const n = Math.min(CHANGE_CHECK_SEGMENT, length - off);
    const h = createHash('sha256');
    for (let p = 0; p < n; p += 4 * 1024 * 1024) h.update(await target.read(off + p, Math.min(4 * 1024 * 1024, n - p)));
    local.push(h.digest('hex'));
    tick();
  }
  const theirs = await remote;
  const first = local.findIndex((d, i) => d !== theirs[i]);
  return first < 0 ? undefined : `the ${CHANGE_CHECK_SEGMENT / (1024 * 1024)} MiB piece at offset ${first * CHANGE_CHECK_SEGMENT} differs`;
}
