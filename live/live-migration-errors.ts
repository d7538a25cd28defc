/**
 * Why a live migration did not happen, as types an operator can act on: the failures of the troubleshooting table
 * (guest CPU does not match, no valid host, connection timeout, block migration disk copy failed) and the checks
 * before it (the destination's compute down or disabled, the server not ACTIVE). Nova's and libvirt's texts are
 * matched here; each error says what to do. A failure before the switchover leaves the instance ACTIVE on its source;
 * one Nova records after QEMU switched over (Nova Zed's port-binding race with Neutron) can leave it stopped, so the
 * error without a known cause does not say where the instance is.
 */

export class LiveMigrationError extends Error {
  override name = 'LiveMigrationError';
  /** The cloud's or the hypervisor's own words. */
  readonly toolMessage?: string;
  /** What the operator can do about it. */
  readonly resolution: string;
  constructor(message: string, resolution: string, toolMessage?: string) {
    super(`${message}${toolMessage ? ` (${toolMessage.trim()})` : ''}. ${resolution}`);
    this.resolution = resolution;
    this.toolMessage = toolMessage;
  }
}

/** The CPU models of the two hosts differ: the guest's CPU cannot run on the destination. */
export class CpuIncompatibleError extends LiveMigrationError {
  override name = 'CpuIncompatibleError';
}

/** The scheduler found no destination: none has the capacity, or none meets the flavor's requirements. */
export class NoValidHostError extends LiveMigrationError {
  override name = 'NoValidHostError';
}

/** The hosts could not reach each other on the migration network. */
export class MigrationConnectionError extends LiveMigrationError {
  override name = 'MigrationConnectionError';
}

/** Block migration: copying local disks to the destination failed (usually its free disk). */
export class BlockMigrationDiskError extends LiveMigrationError {
  override name = 'BlockMigrationDiskError';
}

/** A check before the migration refused it: a compute down or disabled, the server not ACTIVE, same host. */
export class LiveMigrationPrecheckError extends LiveMigrationError {
  override name = 'LiveMigrationPrecheckError';
}

/** A stopped server (which a drain moves by cold migration) could not be moved; it stays stopped where it was. */
export class ColdMoveError extends LiveMigrationError {
  override name = 'ColdMoveError';
}

const HYPERVISOR_SHOW = 'openstack hypervisor show <host>';

interface Rule {
  test: RegExp;
  make: (cause: string) => LiveMigrationError;
}

const RULES: Rule[] = [
  {
    // libvirt: "guest CPU doesn't match specification: missing features: …", "the CPU is incompatible with host CPU";
    // Nova: "Unacceptable CPU info: CPU doesn't have compatibility."
    test: /guest CPU doesn't match specification|CPU is incompatible with host CPU|CPU doesn't have compatibility|Unacceptable CPU info/i,
    make: (c) =>
      new CpuIncompatibleError(
        'the guest CPU does not match the destination host',
        'Configure a common CPU baseline model on every compute (libvirt: [libvirt] cpu_mode = custom with the same cpu_models), then migrate again',
        c,
      ),
  },
  {
    test: /No valid host was found/i,
    make: (c) =>
      new NoValidHostError(
        'no valid host was found for the instance',
        `The destination lacks capacity or does not meet the flavor's requirements: check it with ${HYPERVISOR_SHOW}, or let the scheduler choose`,
        c,
      ),
  },
  {
    test: /Disk of instance is too large|block migration.*(fail|error)|disk copy fail|No space left on device|copy-storage/i,
    make: (c) =>
      new BlockMigrationDiskError(
        'block migration could not copy the disks',
        `The destination lacks free disk: check it with ${HYPERVISOR_SHOW}`,
        c,
      ),
  },
  {
    test: /timed out|Connection timed out|Connection refused|unable to connect|No route to host|Timeout while waiting/i,
    make: (c) =>
      new MigrationConnectionError(
        'the source and destination hosts could not reach each other',
        'Verify connectivity between the compute nodes on the migration network and check the firewall rules of their management interface',
        c,
      ),
  },
  {
    test: /Compute service of .* is unavailable|is not up|service is disabled|Unable to migrate .* to current host|could not be found|is not ACTIVE|in task_state/i,
    make: (c) => new LiveMigrationPrecheckError('a check before the live migration refused it', 'See the reason; fix the host or the server and migrate again', c),
  },
];

/** The typed error for a failure text of Nova or libvirt; an unknown text is a LiveMigrationError with it. */
export function liveMigrationFailure(cause: string): LiveMigrationError {
  const rule = RULES.find((r) => r.test.test(cause));
  return rule ? rule.make(cause) : new LiveMigrationError('the live migration failed', "See the cause, and check the server's status and host before migrating it again: a failure after the switchover can leave it stopped", cause);
}
