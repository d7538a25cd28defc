/**
 * Every failure type an activity can end with that retrying cannot fix, in one place: activities mark these
 * non-retryable (activities/failures.ts) and the workflows' retry policies list them (workflows/*-proxies.ts), so the
 * two can never disagree. Each entry says what it means for an operator.
 */
export const NON_RETRYABLE_FAILURES = {
  // Source (vSphere)
  InvalidLogin: 'the source rejected the configured credentials',
  VmNotFound: 'the source VM does not exist',
  UnknownSourceError: 'the migration names a source that is not configured',
  SourceChangedError: 'the source VM no longer matches what preflight saw',
  SnapshotGoneError: "a sync's snapshot was removed by someone else",
  ExportSizeMismatchError: "the disk export's size is not the disk's",
  SourceUnreadableError: 'the source failed the same read on every try, attempt after attempt, without progress',
  // Configuration and request
  ConfigError: 'the configuration is invalid or a secret cannot be read',
  UnknownTargetError: 'the migration names a target that is not configured',
  PreflightError: 'the requested migration cannot work on this VM or target',
  NetworkMappingError: 'a source NIC has no target network, or a mapping matches none',
  // Target cloud
  TargetAuthError: 'the target cloud rejected the credentials or the project scope',
  TargetNotFoundError: 'a flavor, network, subnet, volume type or other named resource does not exist in the project',
  QuotaExceededError: "the project's quota does not allow the resource",
  TargetResourceError: 'a volume, port or server went into an error state; its fault is in the message',
  TargetRequestError: 'the target cloud refused the request as invalid',
  // Copy and guest conversion
  VerificationError: 'the copied bytes do not match the source',
  GuestInspectionFailedError: 'libguestfs could not inspect the guest',
  NoRootFilesystemError: 'no operating system root was found on the disks',
  UnsupportedGuestError: 'virt-v2v cannot convert this guest',
  EncryptedGuestError: 'the guest disks are encrypted',
  InsufficientGuestSpaceError: 'the guest file systems lack the space conversion needs',
  FirmwareMismatchError: "vSphere's firmware setting (BIOS or EFI) is not how the guest's boot disk boots",
  // Live migration between target hosts: trying again needs a change first (or a look at where the instance is).
  LiveMigrationError: 'the live migration failed; its cause is in the message',
  CpuIncompatibleError: 'the guest CPU does not match the destination host',
  NoValidHostError: 'no destination has the capacity or meets the flavor',
  MigrationConnectionError: 'the hosts could not reach each other on the migration network',
  BlockMigrationDiskError: 'block migration could not copy the disks (destination disk space)',
  LiveMigrationPrecheckError: 'a check before the live migration refused it',
  ColdMoveError: 'a stopped server could not be moved off its host by cold migration',
  HostOperationsNotConfiguredError: "the target has no admin credentials for host operations (hostOperations)",
} as const;

export type NonRetryableFailure = keyof typeof NON_RETRYABLE_FAILURES;
export const NON_RETRYABLE_FAILURE_TYPES = Object.keys(NON_RETRYABLE_FAILURES) as NonRetryableFailure[];

export function isNonRetryableFailureType(type: string | undefined | null): boolean {
  return !!type && Object.prototype.hasOwnProperty.call(NON_RETRYABLE_FAILURES, type);
}
