import type { DiscoveredMachine } from '../source/agent/discovered-machine';
import type { StorageMapping } from '../targets/storage-map';

/**
 * What a caller submits. Deliberately free of secrets: the source is named by id and the worker resolves its
 * endpoint and credentials from configuration.
 */

export interface VmSelector {
  /** VM name in the source inventory. */
  name?: string;
  /** Managed object id, e.g. "vm-42" (takes precedence over name). */
  moref?: string;
}

export interface NetworkMapping {
  /** Match a source NIC by MAC address … */
  sourceMac?: string;
  /** … or by the source network (port group) name. */
  sourceNetwork?: string;
  targetNetwork: string;
  targetSubnet?: string;
  /** Request the source MAC on the target network (subject to network policy). */
  preserveMac?: boolean;
  /** Fixed IP addresses on the target subnet. */
  fixedIps?: string[];
  /**
   * Keep the addresses VMware Tools report on the NIC as fixed IPs (the VM must be powered on with Tools running);
   * resolved at submission into `fixedIps`. Neither: the target assigns an address (DHCP).
   */
  keepIps?: boolean;
  /** Security groups for the port (default: the project's default group). */
  securityGroups?: string[];
  /** Associate a floating IP from this external network. */
  floatingIpNetwork?: string;
}

export interface TargetSpec {
  /** A configured target by name; absent (migrations submitted before targets had names): the default target. */
  name?: string;
  /** The project in that target; the migration acts in it only. */
  project: string;
  /** Defaults to the source VM name. */
  instanceName?: string;
  /** Absent: the smallest flavor of the target project that matches or exceeds the source's vCPUs and memory. */
  flavor?: string;
  volumeType: string;
  /** Volume types per source datastore or per disk (targets/storage-map.ts); disks it does not name get volumeType. */
  storageMap?: StorageMapping[];
  availabilityZone?: string;
  /** The block storage zone of the volumes (default: the cloud's default zone). */
  volumeAvailabilityZone?: string;
  networks: NetworkMapping[];
  diskBus?: 'virtio' | 'scsi' | 'sata' | 'ide';
  machineType?: 'pc-i440fx' | 'pc-q35';
  /** A key pair the cloud injects into the instance. */
  keyName?: string;
  /** Delete the volumes when the instance is deleted (default false). */
  deleteVolumesOnTermination?: boolean;
  /** Start the instance once the migration has completed (default false: created powered off). Warm: warm.startTarget. */
  start?: boolean;
  /** Keep the target volumes of a failed or cancelled migration (default false: nothing is left behind). */
  keepOnFailure?: boolean;
  /**
   * Deploy from clones of the replicated volumes (default true): the conversion writes clones, so the replicas stay
   * as copied and can be synced again. false is refused by preflight: vmigrate has no way to deploy without clones.
   */
  cloneDisks?: boolean;
}

/** What happens to the guest OS once its disks are copied. */
export interface GuestOptions {
  /**
   * auto (default): convert when inspection finds a guest virt-v2v can convert; an encrypted or unrecognised one is
   * copied as-is with a warning naming why. force: always try (a failure fails the migration). skip: copy as-is.
   */
  convert?: 'auto' | 'force' | 'skip';
  /** Windows guests: path (on the workers) of the virtio-win ISO the VirtIO drivers are installed from. */
  virtioWinIso?: string;
  /** After Finalize, boot the instance in qemu and wait for its login prompt (default timeout 300 s). */
  bootCheck?: boolean | { timeoutSeconds: number };
}

export interface ColdMigrationInput {
  migrationId: string;
  sourceId: string;
  vm: VmSelector;
  target: TargetSpec;
  guest?: GuestOptions;
  /** Who submitted the migration (an API user); recorded for the audit trail. */
  submittedBy?: string;
  /** Set when the admission workflow started the migration: it waits in Queued for that workflow's grant. */
  admission?: { workflowId: string };
  /** Set on a retried migration: who asked, and what the failed run left durable. */
  retry?: RetryOfMigration;
  /** The verdict the submission was accepted with (Pass or Warn), kept with the migration and shown in its status. */
  preflight?: PreflightRecord;
  /** Cold migrations: how the source is stopped before its disks are read. */
  cold?: ColdOptions;
  /**
   * false: the migration is created and holds its VM, but waits (in Queued, outside the line for copy slots) until
   * it is started (the `startReplication` Update: POST /migrations/:id/start). Default true: it starts at once.
   */
  startReplication?: boolean;
}

export interface ColdOptions {
  /** Shut the guest down cleanly (VMware Tools), powering off hard after the timeout; default false: a hard power-off. */
  shutdownSource?: boolean;
  /** How long the guest shutdown may take (default 300 s). */
  shutdownTimeoutSeconds?: number;
}

export interface PreflightRecord {
  verdict: 'Pass' | 'Warn';
  reasons: Array<{ code: string; severity: 'warn' | 'fail'; message: string }>;
  assessedAt: string;
  /** The flavor preflight found (asked for, or the smallest that fits). */
  flavor?: string;
  /** The runtime estimate at submission (basis "none" when the deployment had no measured rate yet). */
  estimate?: unknown;
}

/** A new run of a migration that ended without completing, picking up what its earlier run made durable. */
export interface RetryOfMigration {
  by: string;
  at: string;
  previousRunId: string;
  /**
   * By disk key. Cold: a verified copy whose volume was kept (not copied again), or how far a copy durably got.
   * Warm: the change id the kept volume was last synced to, so the first sync copies only what changed since.
   */
  disks: Record<string, { copied?: unknown; resumeFrom?: number; changeId?: string; volumeId?: string; since?: string }>;
}

/** Warm migration: the source keeps running while syncs copy its changes; downtime is the final sync at cutover. */
export interface WarmOptions {
  /** Seconds between incremental syncs while Ready (default 3600). */
  syncIntervalSeconds?: number;
  /** At cutover, shut the guest down cleanly first (falls back to a hard power-off after the timeout). Default true. */
  shutdownSource?: boolean;
  /** How long a guest shutdown may take before the power-off fallback (default 300). */
  shutdownTimeoutSeconds?: number;
  /** Start the target instance after Finalize (default false). */
  startTarget?: boolean;
  /** A cutover scheduled at submit time (ISO 8601); syncing continues until then. */
  cutoverAt?: string;
  /** On cancel, delete the target volumes instead of keeping them (default false: keep). */
  deleteVolumesOnCancel?: boolean;
  /** Continue-as-new after this many syncs in one run, so history stays small over days (default 50). */
  syncsPerRun?: number;
  /** Cut over as soon as the full sync is done; resolved at submission into cutoverAt (the submission time). */
  autoDeploy?: boolean;
}

export interface WarmMigrationInput extends ColdMigrationInput {
  warm: WarmOptions;
}

/** What the `cutover` Update and Signal carry. */
export interface CutoverRequest {
  /** Who asked (an operator's name, "api", "temporal-ui"); recorded in the migration's state. */
  actor?: string;
  /** Cut over at this time (ISO 8601) instead of now; syncing continues until then. */
  at?: string;
}

/**
 * A machine booted from the agent's ISO, enrolled through a template: the API starts the migration from the
 * template's target and options and what the agent discovered. No credentials: the agent's session is the worker's.
 */
export interface AgentMigrationInput {
  migrationId: string;
  /** 'agent': there is no configured source; the machine is its own source. */
  sourceId: 'agent';
  templateId: string;
  machineId: string;
  /** What the agent found at its first enrollment (agent/discover.go). */
  machine: DiscoveredMachine;
  target: TargetSpec;
  guest?: GuestOptions;
  /** Start copying at once; false: wait in Queued for a confirmation (API or the Temporal Web UI's `confirm` Signal). */
  autoStart: boolean;
  /** The worker host whose gateway the agent connects to: every step that reads the machine runs there. */
  gateway: { hostId: string; taskQueue: string };
  submittedBy: string;
  /** Set when the admission workflow started the migration: it waits in Queued for that workflow's grant. */
  admission?: { workflowId: string };
}
