/** Public surface of the copy engine. */
export { copyDisk } from './copy-disk';
export { VerificationError } from './verification-error';
export type { BlockSource, BlockTarget, Extent } from './block-device';
export type { AllocationAwareTarget } from './allocation-aware-target';
export * from './copy-options';
export { copyAreas, complementAreas, normaliseAreas } from './copy-areas';
export type { ByteArea, AreaCheckpoint, AreaCopyOptions, AreaCopyResult } from './copy-areas';
