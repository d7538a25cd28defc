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
}
