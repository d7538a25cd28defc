import { ApplicationFailure } from '@temporalio/activity';
import { NbdkitError } from '../nbd/nbdkit';
import { GuestConversionError } from '../guest/conversion-errors';
import { isNonRetryableFailureType } from '../shared/failure-types';
import { VimError, VimFaultError, VmNotFoundError } from '../vsphere/vim-faults';

/**
 * Errors that retrying cannot fix become non-retryable ApplicationFailures carrying their type and message, so the
 * workflow fails fast with a reason an operator can act on. Everything else is rethrown for Temporal to retry.
 */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (!(err instanceof Error)) return err;
  // Typed conversion failures keep their type either way (the workflow and the API show it); the converter's last
  // output goes into the failure's details for whoever has to look into it.
  if (err instanceof GuestConversionError) {
    return ApplicationFailure.create({
      type: err.name,
      message: err.message,
      nonRetryable: !err.retryable,
      details: [{ toolMessage: err.toolMessage, outputTail: err.outputTail.slice(-3000) }],
    });
  }
  const type = err instanceof VmNotFoundError ? 'VmNotFound' : err instanceof VimFaultError ? err.faultType : err.name;
  const permanent =
    isNonRetryableFailureType(type) ||
    (err instanceof NbdkitError && err.code === 'ENOENT') ||
    (err instanceof VimError && !err.retryable);
  if (!permanent) return err;
  return ApplicationFailure.create({ type, message: err.message, nonRetryable: true });
}

/** Run an activity body and translate its failure. */
export async function failuresTranslated<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw asActivityFailure(err);
  }
}

/** The requested migration cannot work on this VM/target (flavor too small, unknown flavor, …). */
export class PreflightError extends Error {
  override name = 'PreflightError';
}

/** The source VM no longer matches what preflight saw (a disk removed or replaced mid-migration). */
export class SourceChangedError extends Error {
  override name = 'SourceChangedError';
}

/** A sync's snapshot disappeared (removed by someone else): redo the sync from a new snapshot. */
export class SnapshotGoneError extends Error {
  override name = 'SnapshotGoneError';
}

/** The source cannot serve part of a disk: the same read failed on every try in several attempts without progress. */
export class SourceUnreadableError extends Error {
  override name = 'SourceUnreadableError';
}
