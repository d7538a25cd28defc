/**
 * Typed errors of the vim25 client. Every error carries `retryable` so that
 * Temporal activities can decide between retrying and failing the workflow.
 * Messages never contain passwords or session cookies: errors from the HTTP
 * layer are re-created from their code and message only (an axios error
 * holds the request body, which for Login holds the password).
 */
import type { XNode } from './soap-reply';

/** Base class of every error thrown by the vSphere client. */
export class VimError extends Error {
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean) {
    super(message);
    this.name = new.target.name;
    this.retryable = retryable;
  }
}

/**
 * Faults that a later attempt can plausibly not hit: transient server or
 * host state, an expired session (a new attempt logs in again), contention.
 * Anything else (bad credentials, wrong power state, missing object, invalid
 * argument, no permission) will fail the same way again.
 */
const RETRYABLE_FAULTS = new Set([
  'NotAuthenticated',
  'TaskInProgress',
  'Timedout',
  'RequestCanceled',
  'HostCommunication',
  'HostNotConnected',
  'HostNotReachable',
  'ConcurrentAccess',
  'ResourceInUse',
  'ResourceNotAvailable',
  'SystemError',
  'NetworkDisruptedAndConfigRolledBack',
]);

export function isRetryableFault(faultType: string): boolean {
  return RETRYABLE_FAULTS.has(faultType);
}

/** A vim25 fault: a SOAP fault of a method call, or the error of a failed task. */
export class VimFaultError extends VimError {
  /** vim25 fault type, e.g. "InvalidLogin", "InvalidPowerState", "ManagedObjectNotFound". */
  readonly faultType: string;
  /** The fault's detail object, for callers needing its fields. */
  readonly detail?: XNode;
  constructor(faultType: string, message: string, opts: { retryable?: boolean; detail?: XNode } = {}) {
    super(message || faultType, opts.retryable ?? isRetryableFault(faultType));
    this.faultType = faultType;
    this.detail = opts.detail;
  }
}

/** Wrong user name or password. Never retryable. */
export class InvalidLoginError extends VimFaultError {
  constructor(message = 'Cannot complete login due to an incorrect user name or password', detail?: XNode) {
    super('InvalidLogin', message, { retryable: false, detail });
  }
}

/** The VM asked for does not exist (by name or moref). Never retryable. */
export class VmNotFoundError extends VimFaultError {
  readonly vm: { name?: string; moref?: string };
  constructor(vm: { name?: string; moref?: string }, message?: string) {
    const what = [vm.name && `named "${vm.name}"`, vm.moref && `with moref ${vm.moref}`].filter(Boolean).join(' ');
    super(vm.moref && !vm.name ? 'ManagedObjectNotFound' : 'NotFound', message ?? `VM ${what || '(unspecified)'} not found`, {
      retryable: false,
    });
    this.vm = vm;
  }
}

/** vCenter could not be reached or the connection broke. Retryable unless TLS verification failed. */
export class VimConnectionError extends VimError {
  readonly code?: string;
  constructor(message: string, code: string | undefined, retryable: boolean) {
    super(message, retryable);
    this.code = code;
  }
}

/** An HTTP answer that is not a SOAP reply (proxy error page, 404 on a wrong URL...). */
export class VimHttpError extends VimError {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message, status >= 500 || status === 429 || status === 408);
    this.status = status;
  }
}

/** A task did not finish within the allowed time. Retryable: the task may still complete. */
export class VimTaskTimeoutError extends VimError {
  constructor(message: string) {
    super(message, true);
  }
}

/** Builds the error for a fault type, choosing the specific subclass. */
export function faultError(faultType: string, message: string, detail?: XNode): VimFaultError {
  if (faultType === 'InvalidLogin') return new InvalidLoginError(message || undefined, detail);
  return new VimFaultError(faultType, message, { detail });
}
