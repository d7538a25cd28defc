import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BlockTarget } from '../../copy/block-device';
import { consoleVerdict, stripAnsi, type BootCheckResult } from '../../guest/boot-check';
import { FileBlockTarget } from '../local/file-block-target';
import type { OpenStackTargetConfig } from '../target-config';
import { TargetResourceError } from '../target-errors';
import type {
  MacConflict,
  QuotaHeadroom,
  BootCheckOptions,
  BootProperties,
  Flavor,
  InstanceDescription,
  InstanceRef,
  InstanceSpec,
  PlacementCheck,
  ReleaseReport,
  ReleaseRequest,
  TargetCapabilities,
  TargetProvider,
  VolumeAttachment,
  VolumeOwner,
  VolumeRef,
  VolumeSpec,
  TargetChoices,
} from '../target-provider';
import { CinderAttachments } from './cinder-attachments';
import { CinderVolumes, META_MIGRATION, META_SIZE_BYTES, type CinderVolume } from './cinder-volumes';
import { KeystoneSession } from './keystone-session';
import { NeutronPorts } from './neutron-ports';
import { NfsShareMounts } from './nfs-share-mounts';
import { instanceStatus, NovaServers, type NovaServer } from './nova-servers';
import { OpenStackApi } from './openstack-api';
import type { QuotaUsage } from './openstack-quotas';
import { CinderAttachmentAccess, WorkerServerAccess, type VolumeAccess } from './volume-access';

/**
 * An OpenStack cloud as a target: Cinder volumes (created and written through Cinder, so they are like any other
 * volume), Neutron ports, a Nova server booting from the converted volume. Every call is made with a token scoped to
 * the migration's project, so nothing is created anywhere else.
 */

export interface OpenStackTargetOptions {
  name: string;
  config: OpenStackTargetConfig;
  /** The worker's scratch space: NFS shares are mounted under it unless the configuration says where. */
  workDir: string;
  logger?: Logger;
}

interface ProjectClients {
  cinder: CinderVolumes;
  attachments: CinderAttachments;
  nova: NovaServers;
  neutron: NeutronPorts;
  access: VolumeAccess;
}

/** Statuses in which a volume may be written by the worker or booted. */
const READY = ['available'];

export class OpenStackTargetProvider implements TargetProvider {
  readonly kind = 'openstack';
  readonly name: string;
  readonly capabilities: TargetCapabilities = {
    ports: true,
    bootCheckInCloud: true,
    volumesOnWorkerHost: false,
    options: { keyPairs: true, fixedIps: true, securityGroups: true, floatingIps: true, availabilityZones: true, deleteVolumesOnTermination: true },
  };
  private readonly keystone: KeystoneSession;
  private readonly mounts: NfsShareMounts;
  private readonly projects = new Map<string, ProjectClients>();
  private readonly waitTimeoutMs: number;

  constructor(private readonly opts: OpenStackTargetOptions) {
    this.name = opts.name;
    this.keystone = new KeystoneSession(opts.config);
    const access = opts.config.volumeAccess;
    this.mounts = new NfsShareMounts(access.mode === 'cinder-attachment' && access.mountBase ? access.mountBase : path.join(opts.workDir, 'nfs-mounts'));
    this.waitTimeoutMs = opts.config.waitTimeoutSeconds * 1000;
  }

  /** The clients of one project (each with a token scoped to it). */
  clients(project: string): ProjectClients {
    let c = this.projects.get(project);
    if (!c) {
      const cinder = new CinderVolumes(new OpenStackApi(this.keystone, project, 'volumev3'), this.waitTimeoutMs);
      const attachments = new CinderAttachments(cinder);
      const nova = new NovaServers(new OpenStackApi(this.keystone, project, 'compute'), cinder, this.waitTimeoutMs);
      const neutron = new NeutronPorts(new OpenStackApi(this.keystone, project, 'network'));
      const cfg = this.opts.config.volumeAccess;
      const access: VolumeAccess =
        cfg.mode === 'cinder-attachment'
          ? new CinderAttachmentAccess(attachments, this.mounts)
          : new WorkerServerAccess(nova, cfg.workerServerId, { waitTimeoutMs: this.waitTimeoutMs });
      c = { cinder, attachments, nova, neutron, access };
      this.projects.set(project, c);
    }
    return c;
  }

  async listFlavors(project: string): Promise<Flavor[]> {
    return (await this.clients(project).nova.listFlavors()).map(({ name, vcpus, ramMB, diskGB }) => ({ name, vcpus, ramMB, diskGB }));
  }

  async listChoices(project: string): Promise<TargetChoices> {
    const { cinder, nova, neutron } = this.clients(project);
    const [flavors, volumeTypes, networks, zones, volumeZones] = await Promise.all([this.listFlavors(project), cinder.listVolumeTypes(), neutron.listNetworks(), nova.listAvailabilityZones(), cinder.listAvailabilityZones()]);
    return {
      flavors,
      volumeTypes: volumeTypes.map(({ name, description }) => ({ name, ...(description ? { description } : {}) })),
      networks,
      availabilityZones: zones.filter((z) => z.available).map((z) => z.name),
      volumeAvailabilityZones: volumeZones,
    };
  }

  async checkPlacement(req: PlacementCheck): Promise<string[]> {
    const { cinder, nova, neutron } = this.clients(req.project);
    await cinder.checkVolumeType(req.volumeType);
    if (req.volumeAvailabilityZone) await cinder.checkAvailabilityZone(req.volumeAvailabilityZone);
    if (req.availabilityZone) await nova.checkAvailabilityZone(req.availabilityZone);
    for (const nic of req.nics) {
      const net = await neutron.network(nic.network);
      if (nic.subnet) await neutron.subnet(nic.subnet, net.id);
      for (const g of nic.securityGroups ?? []) await neutron.securityGroup(g);
      if (nic.floatingIpNetwork) await neutron.network(nic.floatingIpNetwork);
    }
    if (req.keyName) await nova.checkKeyPair(req.keyName);
    return [];
  }

  async quotaHeadroom(project: string): Promise<QuotaHeadroom> {
    const { cinder, nova, neutron } = this.clients(project);
    const [compute, volume, network] = await Promise.all([nova.quotaUsage(), cinder.quotaUsage(), neutron.quotaUsage()]);
    const free = (q: QuotaUsage | undefined) => (q === undefined || q.limit < 0 ? undefined : Math.max(0, q.limit - q.in_use - (q.reserved ?? 0)));
    const byType: Record<string, number> = {};
    for (const [k, q] of Object.entries(volume)) {
      const left = free(q);
      if (k.startsWith('gigabytes_') && left !== undefined) byType[k.slice('gigabytes_'.length)] = left;
    }
    return {
      instances: free(compute.instances),
      cores: free(compute.cores),
      ramMB: free(compute.ram),
      volumes: free(volume.volumes),
      gigabytes: free(volume.gigabytes),
      gigabytesByType: byType,
      ports: free(network.port),
    };
  }

  async macConflicts(project: string, wanted: Array<{ network: string; mac: string }>): Promise<MacConflict[]> {
    const { neutron } = this.clients(project);
    const out: MacConflict[] = [];
    for (const w of wanted) {
      const net = await neutron.network(w.network);
      for (const port of await neutron.portsWithMac(net.id, w.mac)) out.push({ network: w.network, mac: w.mac, port: port.name ? `${port.name} (${port.id})` : port.id });
    }
    return out;
  }

  async createVolume(spec: VolumeSpec): Promise<VolumeRef> {
    const { cinder } = this.clients(spec.project);
    const existing = await cinder.findOwned(spec.owner);
    if (existing) {
      const recorded = Number(existing.metadata[META_SIZE_BYTES]);
      if (recorded !== spec.sizeBytes) {
        throw new Error(`volume ${existing.id} of migration ${spec.owner.migrationId} disk ${spec.owner.disk} holds ${recorded} bytes, requested ${spec.sizeBytes}`);
      }
      return this.toRef(spec.project, await this.settled(spec.project, existing));
    }
    const created = await cinder.create({ ...spec });
    return this.toRef(spec.project, await cinder.waitForStatus(created.id, READY));
  }

  async findVolume(project: string, owner: VolumeOwner): Promise<VolumeRef | undefined> {
    const v = await this.clients(project).cinder.findOwned(owner);
    return v && this.toRef(project, v);
  }

  async openVolume(ref: VolumeRef): Promise<BlockTarget> {
    const attached = await this.attach(ref);
    try {
      if (attached.format !== 'raw') throw new Error(`volume ${ref.id} is stored as ${attached.format}; the copy writes raw volumes only`);
      const target = await FileBlockTarget.open(attached.path, ref.sizeBytes, { leadingPart: true });
      const close = target.close.bind(target);
      return Object.assign(target, {
        close: async () => {
          try {
            await close();
          } finally {
            await attached.release();
          }
        },
      });
    } catch (err) {
      await attached.release().catch(() => undefined);
      throw err;
    }
  }

  async attachVolume(ref: VolumeRef): Promise<VolumeAttachment> {
    const attached = await this.attach(ref);
    return { path: attached.path, format: attached.format, detach: () => attached.release() };
  }

  async deleteVolume(ref: VolumeRef): Promise<void> {
    const { cinder } = this.clients(ref.project);
    const v = await cinder.get(ref.id);
    if (!v) return;
    await this.settled(ref.project, v, ['available', 'error']);
    await cinder.delete(ref.id);
  }

  /** Bootable, with the image properties Nova boots it by (Nova reads them from a boot volume's image metadata). */
  async setVolumeBootable(ref: VolumeRef, boot: BootProperties, metadata: Record<string, string>): Promise<void> {
    const { cinder } = this.clients(ref.project);
    await cinder.action(ref.id, { 'os-set_bootable': { bootable: true } }, `marking volume ${ref.id} bootable`);
    await cinder.action(ref.id, { 'os-set_image_metadata': { metadata: imageProperties(boot) } }, `setting the image properties of volume ${ref.id}`);
    await cinder.setMetadata(ref.id, metadata);
  }

  async cloneVolume(base: VolumeRef, spec: { name: string; owner: VolumeOwner; metadata?: Record<string, string> }): Promise<VolumeRef> {
    const { cinder } = this.clients(base.project);
    const existing = await cinder.findOwned(spec.owner);
    if (existing) return this.toRef(base.project, await this.settled(base.project, existing));
    const created = await cinder.create({
      name: spec.name,
      sizeBytes: base.sizeBytes,
      volumeType: base.volumeType,
      owner: spec.owner,
      metadata: spec.metadata,
      sourceVolumeId: base.id,
    });
    return this.toRef(base.project, await cinder.waitForStatus(created.id, READY));
  }

  async createInstance(spec: InstanceSpec): Promise<InstanceRef> {
    const { nova, neutron } = this.clients(spec.project);
    const tag = migrationTag(spec.migrationId);
    let server = await nova.findByTag(tag);
    if (!server) {
      const flavor = await nova.flavor(spec.flavor);
      if (spec.keyName) await nova.checkKeyPair(spec.keyName);
      const ports = [];
      for (const [i, nic] of spec.nics.entries()) {
        ports.push(await neutron.ensurePort(`${spec.migrationId}-nic${i}`, tag, nic, `vmigrate: NIC ${nic.sourceMac} of ${spec.name}`));
      }
      server = await nova.create({
        name: spec.name,
        flavorId: flavor.id,
        tag,
        ports: ports.map((p) => p.id),
        volumeIds: spec.volumes.map((v) => v.id),
        deleteOnTermination: spec.deleteVolumesOnTermination ?? false,
        availabilityZone: spec.availabilityZone,
        keyName: spec.keyName,
        metadata: { ...(spec.metadata ?? {}), [META_MIGRATION]: spec.migrationId },
      });
    }
    // Created is not launched: the instance waits, powered off, until the migration or its operator starts it.
    return this.toInstanceRef(spec.project, await nova.powerTo(server.id, 'SHUTOFF', 'once created'));
  }

  async getInstance(ref: InstanceRef): Promise<InstanceRef | undefined> {
    const server = await this.server(ref);
    return server && this.toInstanceRef(ref.project, server);
  }

  async startInstance(ref: InstanceRef): Promise<InstanceRef> {
    const { nova } = this.clients(ref.project);
    const server = await this.server(ref);
    if (!server) throw new TargetResourceError(`instance ${ref.project}/${ref.name} (${ref.id}) does not exist`);
    return this.toInstanceRef(ref.project, await nova.powerTo(server.id, 'ACTIVE', 'on request'));
  }

  async describeInstance(ref: InstanceRef): Promise<InstanceDescription | undefined> {
    const server = await this.server(ref);
    if (!server) return undefined;
    const { cinder, nova } = this.clients(ref.project);
    const attached = await nova.listVolumeAttachments(server.id);
    const volumes = (await Promise.all(attached.map((a) => cinder.get(a.volumeId)))).filter((v): v is CinderVolume => !!v);
    const boot = volumes.find((v) => v.bootable === 'true') ?? volumes[0];
    const props = boot?.volume_image_metadata ?? {};
    const flavor: Flavor = { name: server.flavor?.original_name ?? '', vcpus: server.flavor?.vcpus ?? 1, ramMB: server.flavor?.ram ?? 512, diskGB: server.flavor?.disk };
    const spec: InstanceSpec = {
      project: ref.project,
      name: server.name,
      migrationId: server.metadata?.[META_MIGRATION] ?? '',
      flavor: flavor.name,
      availabilityZone: server['OS-EXT-AZ:availability_zone'],
      firmware: props.hw_firmware_type === 'uefi' ? 'efi' : 'bios',
      ...(props.os_secure_boot === 'required' ? { secureBoot: true } : {}),
      machineType: props.hw_machine_type === 'q35' ? 'pc-q35' : 'pc-i440fx',
      diskBus: (props.hw_disk_bus as InstanceSpec['diskBus']) ?? 'virtio',
      volumes: [boot, ...volumes.filter((v) => v !== boot)].filter((v): v is CinderVolume => !!v).map((v) => this.toRef(ref.project, v)),
      nics: [],
      metadata: server.metadata,
    };
    return { instance: this.toInstanceRef(ref.project, server), spec, flavor };
  }

  /**
   * Start the server and read its console (os-getConsoleOutput) until the login prompt, a fatal line, or the timeout;
   * then put it back as it was (a server that was off is stopped again: checking is not launching).
   */
  async checkBoot(ref: InstanceRef, opts: BootCheckOptions): Promise<BootCheckResult> {
    const started = Date.now();
    const { nova } = this.clients(ref.project);
    const before = await this.server(ref);
    if (!before) throw new TargetResourceError(`instance ${ref.project}/${ref.name} (${ref.id}) does not exist`);
    await this.startInstance(ref);
    try {
      let text = '';
      for (;;) {
        text = stripAnsi(await nova.consoleOutput(ref.id, 400));
        const seen = consoleVerdict(text);
        const elapsed = Date.now() - started;
        const result = (verdict: { passed: boolean; reason?: string }) => ({ ...verdict, durationMs: elapsed, consoleTail: text.slice(-4000) });
        if (seen) return result(seen);
        if (opts.signal?.aborted) return result({ passed: false, reason: 'boot check cancelled' });
        if (elapsed > opts.timeoutMs) return result({ passed: false, reason: `no login prompt on the console within ${Math.round(opts.timeoutMs / 1000)} s` });
        opts.onTick?.(elapsed);
        await new Promise((r) => setTimeout(r, 3000));
      }
    } finally {
      if (before.status === 'SHUTOFF') await nova.powerTo(ref.id, 'SHUTOFF', 'after its boot check');
    }
  }

  /** The migration's server, then its ports (with floating IPs), then its volumes unless kept: found by owner tags. */
  async releaseMigration(req: ReleaseRequest): Promise<ReleaseReport> {
    const { cinder, nova, neutron } = this.clients(req.project);
    const tag = migrationTag(req.migrationId);
    const report: ReleaseReport = { deletedVolumes: [], deletedPorts: [], deletedInstances: [] };
    for (let server = await nova.findByTag(tag); server; server = await nova.findByTag(tag)) {
      await nova.delete(server.id);
      report.deletedInstances.push(server.id);
    }
    for (const port of await neutron.listTagged(tag)) {
      await neutron.deletePort(port.id);
      report.deletedPorts.push(port.id);
    }
    // A port whose tag never landed (a crash between create and tag) is found by its name.
    for (let i = 0; ; i++) {
      const port = await neutron.findByName(`${req.migrationId}-nic${i}`);
      if (!port) break;
      await neutron.deletePort(port.id);
      report.deletedPorts.push(port.id);
    }
    if (!req.keepVolumes) {
      for (const v of await cinder.listByMetadata({ [META_MIGRATION]: req.migrationId })) {
        await this.deleteVolume(this.toRef(req.project, v));
        report.deletedVolumes.push(v.id);
      }
    }
    return report;
  }

  private async attach(ref: VolumeRef) {
    const { cinder, access } = this.clients(ref.project);
    const v = await cinder.get(ref.id);
    if (!v) throw new TargetResourceError(`volume ${ref.name} (${ref.id}) no longer exists in project ${ref.project}`);
    return access.attach(v);
  }

  /**
   * A volume that is settling (creating, detaching, …) is waited for; one in error fails with Cinder's reason. One
   * that is in use by this host only (a worker that died mid-copy) is detached from it first.
   */
  private async settled(project: string, v: CinderVolume, statuses = READY): Promise<CinderVolume> {
    const { cinder, attachments } = this.clients(project);
    if (statuses.includes(v.status)) return v;
    if (v.status.startsWith('error')) throw new TargetResourceError(`volume ${v.name ?? v.id} (${v.id}) is in ${v.status}: ${await cinder.faultOf(v.id)}`);
    if (v.status === 'in-use' && (await attachments.removeHostAttachments(v.id)) === 0) {
      throw new TargetResourceError(`volume ${v.name ?? v.id} (${v.id}) is in use by a server; detach it first`);
    }
    return cinder.waitForStatus(v.id, statuses);
  }

  private async server(ref: InstanceRef): Promise<NovaServer | undefined> {
    const { nova } = this.clients(ref.project);
    return ref.id ? nova.get(ref.id) : undefined;
  }

  private toRef(project: string, v: CinderVolume): VolumeRef {
    const sizeBytes = Number(v.metadata?.[META_SIZE_BYTES]) || v.size * 1024 ** 3;
    return { target: this.name, project, name: v.name ?? v.id, id: v.id, sizeBytes, volumeType: v.volume_type ?? '' };
  }

  private toInstanceRef(project: string, s: NovaServer): InstanceRef {
    return { target: this.name, project, name: s.name, id: s.id, status: instanceStatus(s.status) };
  }
}

/** The tag on everything a migration makes in Nova and Neutron (no "/" or ","; at most 60 characters). */
export function migrationTag(migrationId: string): string {
  return /^[A-Za-z0-9._-]{1,48}$/.test(migrationId) ? `vmigrate:${migrationId}` : `vmigrate:${createHash('sha256').update(migrationId).digest('hex').slice(0, 40)}`;
}

/** Nova's image properties for a boot volume, from how the conversion says the guest boots. */
export function imageProperties(boot: BootProperties): Record<string, string> {
  return {
    hw_disk_bus: boot.diskBus === 'sata' ? 'sata' : boot.diskBus,
    ...(boot.diskBus === 'scsi' ? { hw_scsi_model: 'virtio-scsi' } : {}),
    hw_machine_type: boot.machineType === 'pc-q35' ? 'q35' : 'pc',
    hw_firmware_type: boot.firmware === 'efi' ? 'uefi' : 'bios',
    // 'required', not 'optional': Nova then schedules only onto hosts that can (trait
    // COMPUTE_SECURITY_UEFI_SECURE_BOOT) instead of silently booting the guest without it.
    ...(boot.firmware === 'efi' && boot.secureBoot ? { os_secure_boot: 'required' } : {}),
    hw_vif_model: boot.nicModel,
    ...(boot.osType ? { os_type: boot.osType } : {}),
    ...(boot.osDistro ? { os_distro: boot.osDistro } : {}),
  };
}
