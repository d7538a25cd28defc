import type { DiskExport } from './disk-export';

/**
 * What a migration needs from where a machine comes from, whatever that is: plan the machine (its disks, hardware,
 * guest and what the source can do besides serving bytes), then open each disk as an NBD export the copy engine reads.
 * A vSphere VM (source/vsphere/) can be powered off and on, has changed-block tracking and snapshots; a machine booted
 * from the agent's ISO (source/agent/) only serves its disks. Workflows ask the plan's capabilities instead of
 * assuming vSphere: a step the source cannot do is skipped, or refused when the migration needs it (warm needs
 * change tracking).
 */

export type SourceKind = 'vsphere' | 'agent';

export interface SourceCapabilities {
  /** Power the machine off before reading, and back on after a cancel. */
  powerControl: boolean;
  /** Tell which blocks changed since a point (warm migration's incremental syncs). */
  changeTracking: boolean;
  /** Freeze the disks while the machine keeps running (warm migration's syncs). */
  snapshots: boolean;
}

export interface SourceDiskPlan {
  /** Stable within the machine: vSphere's device key, or the agent's disk index. */
  key: number;
  label: string;
  capacityBytes: number;
  model?: string;
  serial?: string;
}

export interface SourceMachinePlan {
  kind: SourceKind;
  /** vSphere: the VM's moref; agent: the machine identity (machine-identity.ts). */
  machineId: string;
  name: string;
  hardware: {
    sockets: number;
    coresPerSocket: number;
    memoryBytes: number;
    firmware: 'bios' | 'efi';
    secureBoot?: boolean;
    nics: Array<{ mac: string; network: string; link?: boolean; addresses?: string[] }>;
  };
  guest: { family: 'linux' | 'windows' | 'other'; distro?: string; version?: string; productName?: string; hostname?: string; encrypted?: boolean; notes?: string[] };
  disks: SourceDiskPlan[];
  capabilities: SourceCapabilities;
}

export interface OpenDiskOptions {
  /** NBD connections to open (the provider's default otherwise). */
  connections?: number;
  /** Scratch space for sockets. */
  workDir: string;
  signal?: AbortSignal;
}

/** One source the workers read from. Optional capabilities are methods a provider may lack. */
export interface SourceProvider {
  readonly kind: SourceKind;
  planMachine(machineId: string): Promise<SourceMachinePlan>;
  /** The disk as a read-only NBD export whose size is the disk's capacity. */
  openDisk(machineId: string, diskKey: number, opts: OpenDiskOptions): Promise<DiskExport>;
  power?: {
    powerOff(machineId: string): Promise<{ previous: 'poweredOn' | 'poweredOff' | 'suspended' }>;
    powerOn(machineId: string): Promise<void>;
  };
  /**
   * SHA-256 digests of [offset, offset+length) in `segment`-byte pieces, computed where the disk is (nothing crosses
   * the network but the digests): tells whether a disk changed since part of it was copied.
   */
  digestRange?(machineId: string, diskKey: number, range: { offset: number; length: number; segment: number }): Promise<string[]>;
}
