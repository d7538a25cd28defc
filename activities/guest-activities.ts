import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import { runBootCheck, type BootCheckResult } from '../guest/boot-check';
import { inspectDiskLayout } from '../guest/disk-layout';
import { runGuestFixes, type GuestFixInput, type GuestFixReport } from '../guest/guest-fixes';
import { inspectGuestDisks, type GuestInspection } from '../guest/libguestfs-inspection';
import { runVirtV2vInPlace } from '../guest/virt-v2v-in-place';
import { openDiskExport, type DiskExport } from '../source/disk-export';
import type { InstanceRef, InstanceSpec } from '../targets/target-provider';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';
import { withVmSession } from '../source/vsphere/vm-session';

export type { GuestFixInput, GuestFixReport } from '../guest/guest-fixes';
export type { GuestInspection } from '../guest/libguestfs-inspection';

export interface BootCheckInput {
  /** The instance Finalize made; runs scheduled before instances were passed whole give only project and name. */
  instance?: InstanceRef;
  project: string;
  instanceName: string;
  /** Default 300: a Linux guest reaches its login prompt in one to three minutes under TCG. */
  timeoutSeconds?: number;
}

export interface BootCheckReport extends BootCheckResult {
  instance: string;
  /** Where it booted: in the target cloud (its console), or in qemu on the worker from the instance's volumes. */
  bootedIn: 'target' | 'worker';
  timeoutSeconds: number;
  diskBus: InstanceSpec['diskBus'];
  machineType: InstanceSpec['machineType'];
  firmware: InstanceSpec['firmware'];
  memoryMB: number;
}

/** The most memory a boot check gives the guest: enough to boot, and a TCG host runs several checks at once. */
const BOOT_CHECK_MAX_MB = 4096;

export function createGuestActivities(deps: ActivityDeps) {
  return {
    /**
     * Inspect stage: what guest is on the source VM's disks (OS, version, firmware, partition tables, file systems,
     * encryption), read through the disks' exports — libguestfs opens them over NBD (nbd://?socket=…), read-only. Heartbeats while the
     * appliance runs (a minute or two under TCG).
     */
    async inspectGuest(input: { sourceId: string; vmMoref: string }): Promise<GuestInspection> {
      const ctx = Context.current();
      return cancellable(() =>
        withVmSession(deps.config, input.sourceId, { moref: input.vmMoref }, async (session) => {
          const hw = await session.client.getVmHardware(session.vm);
          await mkdir(deps.config.workDir, { recursive: true });
          const exports: DiskExport[] = [];
          try {
            for (const disk of hw.disks) {
              ctx.heartbeat({ stage: `opening the export of disk ${disk.key}` });
              exports.push(await openDiskExport({ source: session.source, session: session.client, vm: hw, disk, workDir: deps.config.workDir, connections: 1 }));
            }
            const layouts = [];
            for (const exp of exports) layouts.push(await inspectDiskLayout((off, len) => exp.connections[0].read(off, len), exp.size));
            ctx.heartbeat({ stage: 'libguestfs inspection' });
            return await inspectGuestDisks({
              drives: exports.map((e) => ({ uri: `nbd://?socket=${e.socketPath}`, format: 'raw' })),
              layouts,
              signal: ctx.cancellationSignal,
              onTick: () => ctx.heartbeat({ stage: 'libguestfs inspection' }),
            });
          } finally {
            await Promise.allSettled(exports.map((e) => e.close()));
          }
        }),
      );
    },

    /**
     * Guest Fixes stage: check the copied volumes, then (when the input asks for it) convert the guest with
     * virt-v2v-in-place on copy-on-write clones of them. Retried attempts start again on fresh clones; the volumes
     * themselves are never written. Heartbeats with the converter's stage every few seconds.
     */
    async guestFix(input: GuestFixInput): Promise<GuestFixReport> {
      const ctx = Context.current();
      const attempt = ctx.info.attempt;
      const converter = deps.guestTools?.wrapConverter ? deps.guestTools.wrapConverter(runVirtV2vInPlace) : runVirtV2vInPlace;
      return cancellable(() =>
        runGuestFixes(input, {
          target: deps.targets.get(input.volumes[0]?.target),
          converter,
          workDir: path.join(deps.config.workDir, input.migrationId ?? 'guest-fix'),
          attempt,
          signal: ctx.cancellationSignal,
          onProgress: (p) => ctx.heartbeat({ attempt, ...p }),
        }),
      );
    },

    /**
     * Validation after Finalize: boot the instance's volumes in qemu as the target would run them (its bus, machine
     * type, firmware; snapshot=on, so nothing is written to them) and wait for the login prompt on the serial console.
     * A guest that does not boot is a result (passed: false, with the console's tail), not an activity failure.
     */
    async bootCheck(input: BootCheckInput): Promise<BootCheckReport> {
      const ctx = Context.current();
      return cancellable(async () => {
        const ref: InstanceRef = input.instance ?? { project: input.project, name: input.instanceName, id: '', status: 'SHUTOFF' };
        const provider = deps.targets.get(ref.target);
        const described = await provider.describeInstance(ref);
        if (!described) throw new Error(`instance ${input.project}/${input.instanceName} does not exist`);
        const { spec, flavor } = described;
        const timeoutSeconds = input.timeoutSeconds ?? 300;
        const common = {
          instance: `${input.project}/${input.instanceName}`,
          timeoutSeconds,
          diskBus: spec.diskBus,
          machineType: spec.machineType,
          firmware: spec.firmware,
          ...(spec.secureBoot ? { secureBoot: true } : {}),
        };
        if (provider.capabilities.bootCheckInCloud && provider.checkBoot) {
          const result = await provider.checkBoot(described.instance, {
            timeoutMs: timeoutSeconds * 1000,
            signal: ctx.cancellationSignal,
            onTick: (elapsedMs) => ctx.heartbeat({ elapsedMs }),
          });
          return { ...result, ...common, bootedIn: 'target', memoryMB: flavor.ramMB };
        }
        const attachments = [];
        try {
          for (const v of spec.volumes) attachments.push(await provider.attachVolume(v));
          const memoryMB = Math.min(flavor.ramMB, BOOT_CHECK_MAX_MB);
          const result = await runBootCheck({
            disks: attachments.map((a) => ({ path: a.path, format: a.format })),
            diskBus: spec.diskBus,
            machineType: spec.machineType,
            firmware: spec.firmware,
            secureBoot: spec.secureBoot,
            memoryMB,
            vcpus: flavor.vcpus,
            // As the instance's domain XML has it: VirtIO NIC with VirtIO buses, e1000 with emulated ones.
            nicModel: spec.diskBus === 'virtio' || spec.diskBus === 'scsi' ? 'virtio' : 'e1000',
            timeoutMs: timeoutSeconds * 1000,
            signal: ctx.cancellationSignal,
            onTick: (elapsedMs) => ctx.heartbeat({ elapsedMs }),
          });
          return { ...result, ...common, bootedIn: 'worker', memoryMB };
        } finally {
          await Promise.allSettled(attachments.map((a) => a.detach()));
        }
      });
    },
  };
}

/**
 * The tools stop when the activity is cancelled (its signal kills them); whatever error that causes is reported as the
 * cancellation it is, so the workflow sees a cancelled activity, not a failed one.
 */
async function cancellable<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await failuresTranslated(body);
  } catch (err) {
    if (Context.current().cancellationSignal.aborted && !(err instanceof CancelledFailure)) {
      throw new CancelledFailure(`cancelled: ${err instanceof Error ? err.message : String(err)}`);
    }
    throw err;
  }
}
