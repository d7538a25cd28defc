/** Errors raised by the NBD client. `code` is a stable string callers can switch on. */
import { constants as osConstants } from 'node:os';
import { NBD_ERRNO } from './protocol-constants';

export interface NbdErrorOptions {
  /** Errno as sent by the server (protocol values are the Linux ones). */
  errno?: number;
  /** e.g. 'EIO', 'ECONNREFUSED', 'ECONNRESET', 'EPROTO', 'ABORT_ERR', 'NBD_REP_ERR_UNKNOWN', 'NBD_CLOSED'. */
  code?: string;
  /** Offset and length of the request that failed, when there was one. */
  offset?: number;
  length?: number;
  cause?: unknown;
}

export class NbdError extends Error {
  errno?: number;
  code?: string;
  offset?: number;
  length?: number;

  constructor(message: string, opts: NbdErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NbdError';
    if (opts.errno !== undefined) this.errno = opts.errno;
    if (opts.code !== undefined) this.code = opts.code;
    if (opts.offset !== undefined) this.offset = opts.offset;
    if (opts.length !== undefined) this.length = opts.length;
  }
}

/** Rejection of a request whose AbortSignal fired. name 'AbortError', code 'ABORT_ERR' like Node's own AbortError. */
export class NbdAbortError extends NbdError {
  constructor(message: string, opts: NbdErrorOptions = {}) {
    super(message, { code: 'ABORT_ERR', ...opts });
    this.name = 'AbortError';
  }
}

let reverseErrno: Map<number, string> | undefined;

/** Errno number → symbolic name ('EIO'); falls back to the local OS table, then 'ERRNO_<n>'. */
export function errnoName(errno: number): string {
  const known = NBD_ERRNO[errno];
  if (known) return known[0];
  if (!reverseErrno) {
    reverseErrno = new Map();
    for (const [name, value] of Object.entries(osConstants.errno)) {
      if (!reverseErrno.has(value)) reverseErrno.set(value, name);
    }
  }
  return reverseErrno.get(errno) ?? `ERRNO_${errno}`;
}

/** "EIO (Input/output error)" */
export function describeErrno(errno: number): string {
  const known = NBD_ERRNO[errno];
  return known ? `${known[0]} (${known[1]})` : `${errnoName(errno)} (errno ${errno})`;
}
