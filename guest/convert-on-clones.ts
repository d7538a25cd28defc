/**
 * Convert on a copy: virt-v2v-in-place writes to the disks it converts, so it is given cheap copy-on-write clones of
 * the copied volumes (local target: qcow2 overlays; a cloud: volumes cloned from them), never the volumes themselves. A failed or interrupted conversion
 * leaves the copied volumes exactly as copied: its clones are discarded and the next attempt clones afresh, so
 * nothing is copied from the source again — and a warm migration's synced volumes stay untouched, so syncing into
 * them can go on (after which the clones are stale and conversion is redone).
 */
import type { TargetProvider, VolumeOwner, VolumeRef } from '../targets/target-provider';
import type { ConversionRequest, ConversionResult } from './virt-v2v-in-place';

export type Converter = (req: ConversionRequest) => Promise<ConversionResult>;

export interface ConvertOnClonesInput {
  target: TargetProvider;
  /** The copied volumes, boot disk first. Only read (as the clones' bases). */
  volumes: VolumeRef[];
  /** The clone of each volume; the same owner on every attempt, so a retry finds (and discards) a stale one. */
  cloneOf: (volume: VolumeRef) => { name: string; owner: VolumeOwner };
  metadata?: Record<string, string>;
  request: Omit<ConversionRequest, 'disks'>;
  converter: Converter;
}

export interface ConvertOnClonesResult {
  clones: VolumeRef[];
  conversion: ConversionResult;
  /** Clones left by an earlier attempt that did not finish, discarded before this one started. */
  discardedStale: string[];
}

export async function convertOnClones(input: ConvertOnClonesInput): Promise<ConvertOnClonesResult> {
  const { target } = input;
  const discardedStale: string[] = [];
  const clones: VolumeRef[] = [];
  try {
    for (const volume of input.volumes) {
      const { name, owner } = input.cloneOf(volume);
      // A clone that already exists was written by an attempt that did not finish (or by a conversion that finished
      // but whose report was lost): either way its content is not known to be right. Start from the copy again.
      const stale = await target.findVolume(volume.project, owner);
      if (stale) {
        await target.deleteVolume(stale);
        discardedStale.push(stale.name);
      }
      clones.push(await target.cloneVolume(volume, { name, owner, metadata: { ...input.metadata, convertedFrom: volume.name } }));
    }
    const attachments = [];
    try {
      for (const clone of clones) attachments.push(await target.attachVolume(clone));
      const conversion = await input.converter({ ...input.request, disks: attachments.map((a) => ({ path: a.path, format: a.format })) });
      return { clones, conversion, discardedStale };
    } finally {
      await Promise.allSettled(attachments.map((a) => a.detach()));
    }
  } catch (err) {
    // Half-converted clones are worth nothing; the copied volumes underneath are intact.
    for (const clone of clones) await target.deleteVolume(clone).catch(() => undefined);
    throw err;
  }
}
