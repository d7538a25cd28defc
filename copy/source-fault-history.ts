/**
 * Across attempts of one copy: when do source read failures stop being worth retrying? A copy that fails with a
 * SourceReadError after making progress is retried from its watermark (a flaky source costs an attempt, never the
 * bytes). Attempts that fail at the same watermark again and again mean the source cannot serve what lies there
 * (a bad sector, a datastore file that lost a range, a server that refuses every read): after `limit` such attempts
 * in a row the failure is permanent and says where and why.
 */
import type { SourceReadError } from './source-reader';

/** Kept in the activity's heartbeat details, so the next attempt knows what the previous ones saw. */
export interface SourceFaultHistory {
  /** Consecutive attempts ending in a read failure, the first of a run possibly after some progress. */
  attempts: number;
  /** Watermark the last such attempt ended at. */
  watermark: number;
  offset: number;
  message: string;
}

export const DEFAULT_NO_PROGRESS_ATTEMPTS = 3;

export interface FaultVerdict {
  history: SourceFaultHistory;
  /** Give up: a non-retryable failure with `message`. */
  permanent: boolean;
  message: string;
}

export function judgeSourceReadFailure(
  previous: SourceFaultHistory | undefined,
  error: SourceReadError,
  /** Watermark this attempt started from, and the one it published before failing. */
  startedAt: number,
  endedAt: number,
  what: string,
  limit = DEFAULT_NO_PROGRESS_ATTEMPTS,
): FaultVerdict {
  const stuck = previous !== undefined && endedAt <= startedAt && previous.watermark === endedAt;
  const attempts = stuck ? previous.attempts + 1 : 1;
  const history: SourceFaultHistory = { attempts, watermark: endedAt, offset: error.offset, message: error.sourceMessage };
  const permanent = attempts >= limit;
  const message = permanent
    ? `${what}: the source failed the ${error.operation} at offset ${error.offset} on every try (${error.tries} per attempt) in ` +
      `${attempts} attempts that got no further than offset ${endedAt}; the source says: ${error.sourceMessage}. ` +
      'Check the source disk or datastore (a file or sectors that cannot be read), then retry the migration'
    : `${what}: ${error.message} (attempt ${attempts} of ${limit} without progress before giving up)`;
  return { history, permanent, message };
}
