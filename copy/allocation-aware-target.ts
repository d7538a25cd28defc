/**
 * Optional target capability: a target that can tell where it holds no data (e.g. holes of a sparse file) lets the
 * verification skip reading those ranges: a hole reads as zeros by the storage's own guarantee, so its digest is
 * known. Targets without it are read back in full.
 */
import type { BlockTarget, Extent } from './block-device';


export interface AllocationAwareTarget extends BlockTarget {
  /** Same contract as BlockSource.extents: zero=true only where the target guarantees zeros. */
  extents(offset: number, length: number): Promise<Extent[]>;
}

export function isAllocationAware(target: BlockTarget): target is AllocationAwareTarget {
  return typeof (target as Partial<AllocationAwareTarget>).extents === 'function';
}
