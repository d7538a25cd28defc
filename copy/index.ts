/** Public surface of the copy engine. */
export { copyAreas, complementAreas, normaliseAreas } from './copy-areas';
export { copyDisk } from './copy-disk';
export { VerificationError } from './verification-error';
export { SourceReadError } from './source-reader';
export type { ByteArea } from './byte-areas';
export type { BlockSource, BlockTarget, Extent } from './block-device';
export type { AllocationAwareTarget } from './allocation-aware-target';
export * from './copy-options';
