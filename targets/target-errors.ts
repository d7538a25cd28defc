/**
 * What can go wrong in a target cloud, typed so the workflow fails fast where retrying cannot help and the operator
 * reads what to do. The types are registered as non-retryable in shared/failure-types.ts.
 */

/** Bad credentials, an expired application credential, or no role in the migration's project. */
export class TargetAuthError extends Error {
  override name = 'TargetAuthError';
}

/** A named flavor, network, subnet, volume type, security group or key pair does not exist in the project. */
export class TargetNotFoundError extends Error {
  override name = 'TargetNotFoundError';
}

/** The project's quota does not allow it; the message names the quota. */
export class QuotaExceededError extends Error {
  override name = 'QuotaExceededError';
  constructor(
    message: string,
    /** The quota's name as the cloud says it (gigabytes, volumes, instances, cores, ram, port, …), when known. */
    readonly quota?: string,
  ) {
    super(message);
  }
}

/** A volume, port or server went into an error state; the message carries the cloud's fault. */
export class TargetResourceError extends Error {
  override name = 'TargetResourceError';
}

/** The cloud refused the request as invalid (400): retrying the same request cannot succeed. */
export class TargetRequestError extends Error {
  override name = 'TargetRequestError';
}
