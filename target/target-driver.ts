import type { BlockTarget } from '../copy/block-device';

/**
 * What vmigrate needs from a target cloud. The local driver (target/local/) is the embedded default; an OpenStack
 * driver (Cinder volumes, Nova servers, Neutron ports) implements the same interface.
 */

export interface VolumeSpec {
  project: string;
  /** Unique within the project; creating the same name again returns the existing volume (idempotent retries). */
  name: string;
  sizeBytes: number;
  volumeType: string;
  /** Free-form metadata stored with the volume (migration id, source disk key, …). */
  metadata?: Record<string, string>;
}

export interface VolumeRef {
  project: string;
  name: string;
  id: string;
  sizeBytes: number;
  volumeType: string;
  /** How the bytes are stored: raw (the default, when absent) or qcow2, for a copy-on-write clone. */
  format?: 'raw' | 'qcow2';
  /** A clone's base volume (by name in the same project): it must outlive the clone and not change under it. */
  baseVolume?: string;
}

/** A volume made available to a tool on this host (virt-v2v, qemu): a path it can open, in the given format. */
export interface VolumeAttachment {
  path: string;
  format: 'raw' | 'qcow2';
  /** Release it (a cloud driver detaches the volume from the host). */
  detach(): Promise<void>;
}

/** What an instance was created from, so it can be started elsewhere (a boot check) exactly as it would run. */
export interface InstanceDescription {
  instance: InstanceRef;
  spec: InstanceSpec;
  flavor: Flavor;
}

export interface NicSpec {
  /** MAC on the source NIC. */
  sourceMac: string;
  network: string;
  subnet?: string;
  /** Request the same MAC on the target. */
  preserveMac: boolean;
}

export interface InstanceSpec {
  project: string;
  name: string;
  flavor: string;
  availabilityZone?: string;
  firmware: 'bios' | 'efi';
  machineType: 'pc-i440fx' | 'pc-q35';
  diskBus: 'virtio' | 'scsi' | 'sata' | 'ide';
  /** Boot volume first. */
  volumes: VolumeRef[];
  nics: NicSpec[];
  metadata?: Record<string, string>;
}

export interface InstanceRef {
  project: string;
  name: string;
  id: string;
  status: 'SHUTOFF' | 'ACTIVE';
}

export interface Flavor {
  name: string;
  vcpus: number;
  ramMB: number;
}

export interface TargetDriver {
  readonly kind: string;
  listFlavors(): Promise<Flavor[]>;
  createVolume(spec: VolumeSpec): Promise<VolumeRef>;
  getVolume(project: string, name: string): Promise<VolumeRef | undefined>;
  openVolume(ref: VolumeRef): Promise<BlockTarget>;
  deleteVolume(ref: VolumeRef): Promise<void>;
  /** Mark bootable and attach metadata (the seed's Finalize). */
  setVolumeBootable(ref: VolumeRef, metadata: Record<string, string>): Promise<void>;
  /** Idempotent by (project, name). */
  createInstance(spec: InstanceSpec): Promise<InstanceRef>;
  getInstance(project: string, name: string): Promise<InstanceRef | undefined>;
  /** Power the instance on (idempotent: an ACTIVE instance is left alone). */
  startInstance(project: string, name: string): Promise<InstanceRef>;
  /**
   * A cheap copy-on-write copy of `base` (OpenStack: a Cinder volume cloned from it; local: a qcow2 overlay). Writes
   * to the clone never reach the base, so a guest conversion can run on it and be thrown away and redone without
   * copying any disk again. Idempotent by name for the same base.
   */
  cloneVolume(base: VolumeRef, spec: { name: string; metadata?: Record<string, string> }): Promise<VolumeRef>;
  /** Make a volume available to a tool on this worker host (OpenStack: attach it to the host; local: its file). */
  attachVolume(ref: VolumeRef): Promise<VolumeAttachment>;
  describeInstance(project: string, name: string): Promise<InstanceDescription | undefined>;
}
