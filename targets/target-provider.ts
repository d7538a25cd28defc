import type { BlockTarget } from '../copy/block-device';
import type { BootCheckResult } from '../guest/boot-check';

/**
 * A target provider is where migrated VMs land: one interface serving every kind of target, the way virt-v2v's
 * output modules serve `-o local`, `-o libvirt` and `-o openstack`. A deployment configures named targets (several
 * at once); a migration names its target, and its project in that target. Providers are built on workers, which
 * hold the credentials; the API only needs the names (targets/target-catalog.ts).
 *
 * Idempotency is by ownership, not by name: cloud volume names are not unique, so every volume records which
 * migration and which disk it is for (`VolumeOwner`), and a retried create finds the volume it made before instead of
 * making a second one. Instances and ports are owned by their migration the same way.
 */

/** The migration and disk a volume is for: a second create with the same owner returns the first volume. */
export interface VolumeOwner {
  migrationId: string;
  /** The source disk's key, plus a role for volumes derived from it: "2000", "2000-converted". */
  disk: string;
}

export interface VolumeSpec {
  project: string;
  /** Display name; providers whose names are unique (local) also refuse another owner's volume of that name. */
  name: string;
  /** The source disk's size. A provider that allocates in larger units (Cinder: GiB) rounds up; the extra is zero. */
  sizeBytes: number;
  volumeType: string;
  availabilityZone?: string;
  owner: VolumeOwner;
  /** More metadata stored with the volume (source VM, source disk file, …). */
  metadata?: Record<string, string>;
}

export interface VolumeRef {
  /** The configured target it lives in; refs made before targets had names lack it and mean the default target. */
  target?: string;
  project: string;
  name: string;
  id: string;
  /** The source disk's size: the bytes that hold the disk (a larger volume's tail is zero). */
  sizeBytes: number;
  volumeType: string;
}

/** A volume made available to a tool on this host (virt-v2v, qemu): a path it can open, in the given format. */
export interface VolumeAttachment {
  path: string;
  format: 'raw' | 'qcow2';
  /** Release it (a cloud provider detaches the volume from the host). */
  detach(): Promise<void>;
}

/**
 * How the volume is to be booted, as the conversion decided: stored as the volume's image metadata in a cloud
 * (Nova reads hw_disk_bus, hw_machine_type, … from a boot volume), and used by the local target's domain XML.
 */
export interface BootProperties {
  firmware: 'bios' | 'efi';
  /** UEFI Secure Boot, as the source VM had it (needs pc-q35). */
  secureBoot?: boolean;
  machineType: 'pc-i440fx' | 'pc-q35';
  diskBus: 'virtio' | 'scsi' | 'sata' | 'ide';
  nicModel: 'virtio' | 'e1000';
  osType?: 'linux' | 'windows';
  /** libosinfo short id or distro name, e.g. "debian". */
  osDistro?: string;
}

export interface NicSpec {
  /** MAC on the source NIC. */
  sourceMac: string;
  network: string;
  subnet?: string;
  /** Request the same MAC on the target. */
  preserveMac: boolean;
  /** Fixed IP addresses to request on the target subnet. */
  fixedIps?: string[];
  /** Security groups (names or ids) for the port; absent: the project's default. */
  securityGroups?: string[];
  /** Associate a floating IP from this external network with the port. */
  floatingIpNetwork?: string;
}

export interface InstanceSpec {
  project: string;
  name: string;
  /** The migration that owns it and its ports: a retried create finds them instead of making more. */
  migrationId: string;
  flavor: string;
  availabilityZone?: string;
  firmware: 'bios' | 'efi';
  /** UEFI Secure Boot on (needs pc-q35). */
  secureBoot?: boolean;
  machineType: 'pc-i440fx' | 'pc-q35';
  diskBus: 'virtio' | 'scsi' | 'sata' | 'ide';
  /** Boot volume first. */
  volumes: VolumeRef[];
  nics: NicSpec[];
  metadata?: Record<string, string>;
  /** A key pair the cloud injects (cloud-init guests). */
  keyName?: string;
  /** Delete the volumes with the instance (default false: they outlive it, as migrated data should). */
  deleteVolumesOnTermination?: boolean;
}

export type InstanceStatus = 'BUILD' | 'ACTIVE' | 'SHUTOFF' | 'ERROR';

export interface InstanceRef {
  target?: string;
  project: string;
  name: string;
  id: string;
  status: InstanceStatus;
}

/** What an instance was created from, so it can be started elsewhere (a boot check) exactly as it would run. */
export interface InstanceDescription {
  instance: InstanceRef;
  spec: InstanceSpec;
  flavor: Flavor;
}

export interface Flavor {
  name: string;
  vcpus: number;
  ramMB: number;
  /** Root disk in GB (0: sized by the boot volume). */
  diskGB?: number;
}

export interface TargetCapabilities {
  /** Creates network ports for the NICs (with the source MAC when asked) instead of only describing them. */
  ports: boolean;
  /** Boots the instance itself for a boot check and reads its console; otherwise the worker boots the volumes in qemu. */
  bootCheckInCloud: boolean;
  /**
   * The volumes are reachable only from the worker host that made them (files on its disk): a migration's volume work
   * then runs on that host's own task queue (workflows/worker-host.ts). Cloud volumes attach to any worker.
   */
  volumesOnWorkerHost: boolean;
  /** The migration options this target honours; preflight refuses a migration asking for one it does not. */
  options: TargetOptionSupport;
}

/** Options of a migration's target that only some targets can carry out. */
export interface TargetOptionSupport {
  /** A key pair injected into the instance (`target.keyName`). */
  keyPairs: boolean;
  /** Fixed IP addresses on the ports, given or kept from the source (`fixedIps`, `keepIps`). */
  fixedIps: boolean;
  /** Security groups on the ports. */
  securityGroups: boolean;
  /** A floating IP for a port. */
  floatingIps: boolean;
  /** The instance's and the volumes' availability zones. */
  availabilityZones: boolean;
  /** Volumes deleted with the instance (`target.deleteVolumesOnTermination`). */
  deleteVolumesOnTermination: boolean;
}

/** What a project's quotas leave free; absent fields are unlimited or unknown. */
export interface QuotaHeadroom {
  instances?: number;
  cores?: number;
  ramMB?: number;
  volumes?: number;
  gigabytes?: number;
  /** Per volume type: gigabytes left of that type's own quota. */
  gigabytesByType?: Record<string, number>;
  ports?: number;
}

/** A port of the target network that already has a MAC the migration wants to keep. */
export interface MacConflict {
  network: string;
  mac: string;
  /** The port holding it (id, and its name when the caller may see it). */
  port: string;
}

export interface BootCheckOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onTick?: (elapsedMs: number) => void;
}

export interface PlacementCheck {
  project: string;
  volumeType: string;
  /** The instance's compute zone. */
  availabilityZone?: string;
  /** The volumes' block storage zone. */
  volumeAvailabilityZone?: string;
  nics: NicSpec[];
  /** A key pair the instance is to get (checked where the target has key pairs). */
  keyName?: string;
}

/** What a failed or cancelled migration leaves behind, and what it does not. */
export interface ReleaseRequest {
  project: string;
  migrationId: string;
  /** Keep the volumes (for inspection, or to retry later); ports and a half-built instance go either way. */
  keepVolumes: boolean;
}

export interface ReleaseReport {
  deletedVolumes: string[];
  deletedPorts: string[];
  deletedInstances: string[];
}

/**
 * What a project may choose from in the target when it fills in a migration: flavors, volume types, networks (with
 * their subnets) and availability zones. A list left out means the target takes any name there (the local target's
 * volume types and networks); an empty list means it has none.
 */
export interface TargetChoices {
  flavors: Flavor[];
  volumeTypes?: Array<{ name: string; description?: string }>;
  networks?: Array<{ name: string; id?: string; external?: boolean; subnets: Array<{ name: string; id?: string; cidr?: string }> }>;
  availabilityZones?: string[];
  volumeAvailabilityZones?: string[];
}

export interface TargetProvider {
  /** The target's name in the configuration. */
  readonly name: string;
  readonly kind: 'local' | 'openstack' | 'libvirt';
  readonly capabilities: TargetCapabilities;
  listFlavors(project: string): Promise<Flavor[]>;
  /** Read-only: what the project may choose from (the panel's lists). */
  listChoices(project: string): Promise<TargetChoices>;
  /**
   * Preflight, read-only: what the migration will ask of the target exists in the project (volume type, networks,
   * subnets, security groups, zone). Throws TargetNotFoundError naming what is missing; returns warnings.
   */
  checkPlacement(req: PlacementCheck): Promise<string[]>;
  /** Optional, read-only: what the project's quotas leave free, for preflight. */
  quotaHeadroom?(project: string): Promise<QuotaHeadroom>;
  /** Optional, read-only: ports of the target networks that already hold MACs a migration wants to keep. */
  macConflicts?(project: string, wanted: Array<{ network: string; mac: string }>): Promise<MacConflict[]>;
  /** Idempotent by owner. */
  createVolume(spec: VolumeSpec): Promise<VolumeRef>;
  findVolume(project: string, owner: VolumeOwner): Promise<VolumeRef | undefined>;
  /** Bytes access for the copy: the worker reaches the volume as a file or block device until `close()`. */
  openVolume(ref: VolumeRef): Promise<BlockTarget>;
  /** Idempotent: a volume already gone is fine. */
  deleteVolume(ref: VolumeRef): Promise<void>;
  /** Mark the boot volume bootable, with metadata and the image properties it boots with. */
  setVolumeBootable(ref: VolumeRef, boot: BootProperties, metadata: Record<string, string>): Promise<void>;
  /**
   * A copy of `base` for a guest conversion to write (writes never reach the base), so a conversion can be thrown
   * away and redone without copying any disk again. Idempotent by owner.
   */
  cloneVolume(base: VolumeRef, spec: { name: string; owner: VolumeOwner; metadata?: Record<string, string> }): Promise<VolumeRef>;
  /** Make a volume available to a tool on this worker host. */
  attachVolume(ref: VolumeRef): Promise<VolumeAttachment>;
  /** Ports, then the instance booting from the volumes; waits until it is built. Idempotent by migration. */
  createInstance(spec: InstanceSpec): Promise<InstanceRef>;
  getInstance(ref: InstanceRef): Promise<InstanceRef | undefined>;
  /** Power the instance on and wait until it runs (an ACTIVE instance is left alone). */
  startInstance(ref: InstanceRef): Promise<InstanceRef>;
  describeInstance(ref: InstanceRef): Promise<InstanceDescription | undefined>;
  /** Only where `capabilities.bootCheckInCloud`: start the instance and watch its console for the login prompt. */
  checkBoot?(ref: InstanceRef, opts: BootCheckOptions): Promise<BootCheckResult>;
  /** Delete what a failed or cancelled migration made (its ports, a half-built instance, and volumes unless kept). */
  releaseMigration(req: ReleaseRequest): Promise<ReleaseReport>;
}
