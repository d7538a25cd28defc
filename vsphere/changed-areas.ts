/**
 * The whole-disk Changed Block Tracking map: QueryChangedDiskAreas answers one
 * window at a time, and a window may end before the disk does, so callers
 * loop on startOffset. Every answer is checked before it is trusted; a
 * CBT answer that could make us miss changed bytes is an error
 * (ChangedAreasError), never silently accepted.
 *
 * Error handling, for callers deciding between an incremental and a full sync:
 * - ChangedAreasError (not retryable): the server's answer was inconsistent; do a full resync.
 * - VimFaultError from the query (InvalidArgument for a stale change id, FileFault for unusable tracking
 *   data, ...): propagated as is; do a full resync.
 * - Transient transport failures (VimHttpError 5xx/429/408, VimConnectionError marked retryable, such as a
 *   dropped connection) are retried here at the same offset (`retries` times, with backoff), then the last
 *   one is thrown (still `retryable`, for the activity's own retry policy).
 */
import type { VimClient, MoRef } from './vim-client';
import { VimConnectionError, VimError, VimHttpError } from './vim-faults';

export type ChangedAreasErrorReason = 'no-progress' | 'window-mismatch' | 'area-outside-window' | 'area-outside-disk' | 'overlap';

export interface ChangedArea {
  start: number;
  length: number;
}

/** An answer of QueryChangedDiskAreas that cannot be trusted. Not retryable: fall back to a full copy. */
export class ChangedAreasError extends VimError {
  readonly reason: ChangedAreasErrorReason;
  /** The startOffset asked for when the bad answer came. */
  readonly offset: number;
  constructor(reason: ChangedAreasErrorReason, offset: number, message: string) {
    super(message, false);
    this.name = 'ChangedAreasError';
    this.reason = reason;
    this.offset = offset;
  }
}

export interface QueryAllChangedAreasOptions {
  vm: MoRef;
  /** The snapshot whose state is compared; undefined = the current disk (powered-off VM only). */
  snapshot: MoRef | undefined;
  deviceKey: number;
  capacityBytes: number;
  /** A change id "<uuid>/<n>" of an earlier snapshot, or "*" for the allocated areas. */
  changeId: string;
  /** Attempts after a transient failure, per call (default 3). */
  retries?: number;
  /** First backoff delay in ms, doubled per attempt (default 200). */
  retryDelayMs?: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isTransient(err: unknown): boolean {
  return (err instanceof VimHttpError || err instanceof VimConnectionError) && err.retryable;
}

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n);

/**
 * Calls QueryChangedDiskAreas from offset 0 until the whole disk is covered
 * (`offset = startOffset + length`, never calling with offset == capacity),
 * validating each answer. Returns the areas sorted and merged, and how many
 * windows (successful calls) it took.
 */
export async function queryAllChangedAreas(
  client: Pick<VimClient, 'queryChangedDiskAreas'>,
  opts: QueryAllChangedAreasOptions,
): Promise<{ areas: ChangedArea[]; windows: number }> {
  const { vm, snapshot, deviceKey, capacityBytes: capacity, changeId } = opts;
  if (!isInt(capacity) || capacity < 0) throw new RangeError(`queryAllChangedAreas: invalid capacityBytes ${capacity}`);
  const retries = opts.retries ?? 3;
  const what = `disk ${deviceKey} of ${vm.value}${snapshot ? ` at snapshot ${snapshot.value}` : ''} since ${JSON.stringify(changeId)}`;

  const areas: ChangedArea[] = [];
  let windows = 0;
  for (let offset = 0; offset < capacity; ) {
    let res: Awaited<ReturnType<VimClient['queryChangedDiskAreas']>>;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await client.queryChangedDiskAreas(vm, snapshot, deviceKey, offset, changeId);
        break;
      } catch (err) {
        if (!isTransient(err) || attempt >= retries) throw err;
        await sleep((opts.retryDelayMs ?? 200) * 2 ** attempt);
      }
    }
    windows++;

    const fail = (reason: ChangedAreasErrorReason, detail: string): never => {
      throw new ChangedAreasError(reason, offset, `QueryChangedDiskAreas for ${what} at offset ${offset} (capacity ${capacity}): ${detail}`);
    };
    const winStart = res.startOffset;
    const winEnd = res.startOffset + res.length;
    if (!isInt(res.startOffset) || !isInt(res.length) || res.length < 0 || res.startOffset < 0) {
      fail('window-mismatch', `malformed window startOffset=${res.startOffset} length=${res.length}`);
    }
    if (winStart > offset) {
      fail('window-mismatch', `the answer starts at ${winStart}, after the offset asked for: [${offset}, ${winStart}) would be missed`);
    }
    if (winEnd <= offset) {
      fail('no-progress', `the window [${winStart}, ${winEnd}) does not get past the offset (length ${res.length}) before the end of the disk`);
    }
    if (winEnd > capacity) {
      fail('window-mismatch', `the window [${winStart}, ${winEnd}) reaches past the end of the disk`);
    }

    const got = [...res.changedArea].sort((a, b) => a.start - b.start);
    for (const a of got) {
      if (!isInt(a.start) || !isInt(a.length) || a.length < 0) fail('area-outside-window', `malformed area start=${a.start} length=${a.length}`);
      if (a.length === 0) continue;
      const end = a.start + a.length;
      if (a.start < 0 || end > capacity) fail('area-outside-disk', `area [${a.start}, ${end}) lies outside the disk [0, ${capacity})`);
      if (a.start < winStart || end > winEnd) fail('area-outside-window', `area [${a.start}, ${end}) lies outside the window [${winStart}, ${winEnd})`);
      const last = areas[areas.length - 1];
      if (last && a.start < last.start + last.length) {
        fail('overlap', `area [${a.start}, ${end}) overlaps [${last.start}, ${last.start + last.length})`);
      }
      if (last && a.start === last.start + last.length) last.length += a.length;
      else areas.push({ start: a.start, length: a.length });
    }
    offset = winEnd;
  }
  return { areas, windows };
}
