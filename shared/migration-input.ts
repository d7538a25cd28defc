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
}

export interface TargetSpec {
  project: string;
  /** Defaults to the source VM name. */
  instanceName?: string;
  flavor: string;
  volumeType: string;
  availabilityZone?: string;
  networks: NetworkMapping[];
  diskBus?: 'virtio' | 'scsi' | 'sata' | 'ide';
  machineType?: 'pc-i440fx' | 'pc-q35';
}

export interface ColdMigrationInput {
  migrationId: string;
  sourceId: string;
  vm: VmSelector;
  target: TargetSpec;
}
