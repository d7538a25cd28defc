/** copyDisk: the whole disk as one area onto a fresh target, through the one copy engine (copy-areas.ts). */
import type { BlockSource, BlockTarget } from './block-device';
import { copyAreas } from './copy-areas';
import type { CopyOptions, CopyResult } from './copy-options';

export type { CopyCheckpoint, CopyOptions, CopyProgress, CopyResult, VerificationResult } from './copy-options';
export { VerificationError } from './verification-error';

export function copyDisk(sources: BlockSource[], target: BlockTarget, opts: Omit<CopyOptions, 'areas' | 'zeroOutside'>): Promise<CopyResult> {
  return copyAreas(sources, target, { ...opts, areas: [{ start: 0, length: sources[0]?.size ?? 0 }] });
}
