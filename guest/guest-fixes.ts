/**
 * The Guest Fixes stage: check what landed on each copied volume, decide whether to convert the guest, and convert it
 * on clones of the volumes (convert-on-clones.ts). The report names the volumes the instance must boot from.
 */
import path from 'node:path';
import type { TargetProvider, VolumeRef } from '../targets/target-provider';
import {
  EncryptedGuestError,
  GuestInspectionFailedError,
  NoRootFilesystemError,
  UnsupportedGuestError,
} from './conversion-errors';
import { convertOnClones, type Converter } from './convert-on-clones';
import { inspectDiskLayout, type DiskLayout } from './disk-layout';
import type { GuestInspection } from './libguestfs-inspection';
import { isEfiSystemPartition } from './partition-type-names';
import { ensureUefiBootPath, type UefiBootPathReport } from './uefi-boot-path';
import type { ConversionProgress } from './virt-v2v-in-place';

export type ConvertMode = 'auto' | 'force' | 'skip';

export interface GuestConversionOptions {
  /** auto: convert a guest inspection says virt-v2v can convert, copy others as-is with a warning; force: always try; skip: never. */
  convert: ConvertMode;
  /** How the source booted (the Inspect stage's firmware). */
  firmware: 'bios' | 'efi';
  /** The bus the instance will use: virtio and scsi (virtio-scsi) need the VirtIO drivers conversion installs. */
  diskBus?: 'virtio' | 'scsi' | 'sata' | 'ide';
  /** Recorded with the conversion; virt-v2v-in-place 2.2 has no machine-type option (the guest is not tied to one). */
  machineType?: 'pc-i440fx' | 'pc-q35';
  /** Windows guests: the virtio-win ISO the drivers come from (virt-v2v's VIRTIO_WIN), a path on the worker. */
  virtioWinIso?: string;
  /** The source VM, described to virt-v2v (name, size, NIC MACs). */
  vm?: { name: string; memoryMB?: number; vcpus?: number; nicMacs?: string[] };
}

export interface GuestFixInput {
  /** Names the conversion's scratch space and tags the clones; required when `conversion` is given. */
  migrationId?: string;
  /** The copied (or synced) volumes, boot disk first. Never written: conversion runs on clones of them. */
  volumes: VolumeRef[];
  /** When given, each volume's partition table and file systems must match the source disk's (a cheap copy check). */
  sourceLayouts?: DiskLayout[];
  /** The Inspect stage's guest inspection; lets 'auto' skip a guest that cannot be converted without trying. */
  guest?: GuestInspection;
  /**
   * What the migration asks for. Absent: the first release's behaviour (check the layouts, do not convert), which
   * workflows started before conversion existed still get when they reach this stage.
   */
  conversion?: GuestConversionOptions;
}

export interface GuestFixReport {
  /** Whether the guest was converted (VirtIO drivers, boot loader, VMware tools removed). */
  converted: boolean;
  /** Why not, when it was not. */
  reason?: string;
  volumes: Array<{ volume: string; layout: DiskLayout; matchesSource: boolean }>;
  /** What the instance boots from: the converted clones, or the copied volumes when not converted. Boot disk first. */
  bootVolumes: VolumeRef[];
  conversion?: {
    tool: 'virt-v2v-in-place';
    /** Activity attempt that converted (a retried conversion starts over on new clones). */
    attempt: number;
    durationMs: number;
    stages: Array<{ atSeconds: number; message: string }>;
    warnings: string[];
    infos: string[];
    /** Clones from an earlier, unfinished attempt that this one discarded. */
    discardedStale: string[];
    diskBus: string;
    machineType?: string;
    /** UEFI guests: the removable-media boot path a new instance's empty NVRAM boots from, checked and added if missing. */
    uefiBootPath?: UefiBootPathReport;
  };
  warnings: string[];
}

export const CONVERSION_NOT_CONFIGURED =
  'guest conversion is not configured in this release: the disks were copied as-is (no VirtIO drivers injected, ' +
  'boot loader and VMware tools untouched); the layout was inspected and checked against the source';

export interface GuestFixContext {
  target: TargetProvider;
  converter: Converter;
  /** Scratch space for this attempt (the converter's XML and log). */
  workDir: string;
  attempt: number;
  signal?: AbortSignal;
  onProgress?: (p: ConversionProgress | { stage: string }) => void;
}

export async function runGuestFixes(input: GuestFixInput, ctx: GuestFixContext): Promise<GuestFixReport> {
  const volumes = await checkLayouts(input, ctx);
  const notConverted = (reason: string, warnings: string[] = []): GuestFixReport => ({ converted: false, reason, volumes, bootVolumes: input.volumes, warnings });
  const options = input.conversion;
  if (!options) return notConverted(CONVERSION_NOT_CONFIGURED);

  const decision = decideConversion(options.convert, input.guest);
  if (!decision.convert) return notConverted(decision.reason, [decision.reason]);

  const diskBus = options.diskBus ?? 'virtio';
  const esp = options.firmware === 'efi' ? volumes[0]?.layout.partitions.find(isEfiSystemPartition) : undefined;
  let uefiBootPath: UefiBootPathReport | undefined;
  // The fallback boot path goes onto the converted clone while it is still attached, as part of the same attempt.
  const converter: Converter = esp
    ? async (req) => {
        const result = await ctx.converter(req);
        const progress = () => ctx.onProgress?.({ stage: 'checking the UEFI boot path' });
        progress();
        uefiBootPath = await ensureUefiBootPath({ disk: req.disks[0], espPartition: esp.number, distro: input.guest?.distro, signal: req.signal, onTick: progress });
        return result;
      }
    : ctx.converter;
  ctx.onProgress?.({ stage: 'cloning volumes' });
  try {
    const { clones, conversion, discardedStale } = await convertOnClones({
      target: ctx.target,
      volumes: input.volumes,
      // Owned by the migration and named after the copy it was cloned from, so a retry finds it.
      cloneOf: (v) => ({ name: `${v.name}-converted`, owner: { migrationId: input.migrationId ?? 'guest-fix', disk: `converted-${v.id}` } }),
      metadata: input.migrationId ? { migrationId: input.migrationId } : {},
      converter,
      request: {
        guestName: options.vm?.name ?? input.migrationId ?? 'guest',
        memoryMB: options.vm?.memoryMB,
        vcpus: options.vm?.vcpus,
        firmware: options.firmware,
        nics: options.vm?.nicMacs?.map((mac) => ({ mac })),
        virtioWinIso: options.virtioWinIso,
        workDir: path.join(ctx.workDir, `conversion-attempt-${ctx.attempt}`),
        signal: ctx.signal,
        onProgress: ctx.onProgress,
      },
    });
    const warnings = conversion.warnings.map((w) => `virt-v2v: ${w}`);
    // virt-v2v says whether it could install VirtIO drivers; a VirtIO bus without them cannot boot.
    const noVirtio = conversion.infos.some((i) => /does not have virtio drivers/i.test(i));
    if (noVirtio && (diskBus === 'virtio' || diskBus === 'scsi')) {
      for (const clone of clones) await ctx.target.deleteVolume(clone).catch(() => undefined);
      throw new UnsupportedGuestError(
        `virt-v2v could not install VirtIO drivers in this guest, so it cannot boot from a ${diskBus} disk; migrate it with target.diskBus 'sata' or 'ide'`,
      );
    }
    return {
      converted: true,
      volumes,
      bootVolumes: clones,
      conversion: {
        tool: 'virt-v2v-in-place',
        attempt: ctx.attempt,
        durationMs: conversion.durationMs,
        stages: conversion.stages,
        warnings: conversion.warnings,
        infos: conversion.infos,
        discardedStale,
        diskBus,
        machineType: options.machineType,
        ...(uefiBootPath ? { uefiBootPath } : {}),
      },
      warnings: [
        ...warnings,
        ...(uefiBootPath && !uefiBootPath.present && !uefiBootPath.added ? [`the UEFI fallback boot path is missing and could not be added: ${uefiBootPath.reason}`] : []),
      ],
    };
  } catch (err) {
    // 'auto' promised to copy a guest it cannot convert as-is, with the reason; 'force' fails with it.
    if (options.convert === 'auto' && isNotConvertible(err)) {
      const reason = `guest conversion skipped: ${(err as Error).message}`;
      return notConverted(reason, [reason]);
    }
    throw err;
  }
}

/** What 'auto', 'force' and 'skip' mean, given what the Inspect stage found. */
export function decideConversion(mode: ConvertMode, guest?: GuestInspection): { convert: true } | { convert: false; reason: string } {
  if (mode === 'skip') return { convert: false, reason: "guest conversion skipped: the migration asked for none (guest.convert = 'skip'); the disks were copied as-is" };
  if (mode === 'force' || !guest || guest.convertible) return { convert: true };
  const why = guest.warnings.length ? guest.warnings.join('; ') : `no convertible operating system found (${guest.osFamily})`;
  return {
    convert: false,
    reason: `guest conversion skipped: ${why}. The disks were copied as-is; set guest.convert to 'force' to try anyway`,
  };
}

function isNotConvertible(err: unknown): boolean {
  return (
    err instanceof NoRootFilesystemError ||
    err instanceof EncryptedGuestError ||
    err instanceof GuestInspectionFailedError ||
    (err instanceof UnsupportedGuestError && !/VirtIO drivers/.test(err.message))
  );
}

/** Same bytes give the same layout: a difference means the copy is wrong, and retrying won't help. */
async function checkLayouts(input: GuestFixInput, ctx: GuestFixContext): Promise<GuestFixReport['volumes']> {
  const out: GuestFixReport['volumes'] = [];
  for (const [i, ref] of input.volumes.entries()) {
    ctx.onProgress?.({ stage: `checking ${ref.name}` });
    const vol = await ctx.target.openVolume(ref);
    try {
      const layout = await inspectDiskLayout((off, len) => vol.read(off, len), vol.size);
      const expected = input.sourceLayouts?.[i];
      const matchesSource = expected === undefined || JSON.stringify(layout) === JSON.stringify(expected);
      if (!matchesSource) {
        throw Object.assign(new Error(`target volume ${ref.name} does not have the source disk's layout`), { name: 'VerificationError' });
      }
      out.push({ volume: ref.name, layout, matchesSource });
    } finally {
      await vol.close();
    }
  }
  return out;
}
