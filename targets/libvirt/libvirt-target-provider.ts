/**
 * The libvirt target: KVM hosts managed by libvirt, without a cloud. A migrated VM's disks become volumes of the
 * target's storage pool on its landing host (made through libvirtd), and the instance is a libvirt domain defined
 * there from the converted guest's needs — machine type, firmware, disk bus, NICs with their MACs on the bridges or
 * libvirt networks the target maps the migration's networks to — and started when the migration asks.
 *
 * libvirt keeps no metadata on storage volumes, so what a cloud keeps with a volume (its owner, its project, the boot
 * properties) is a small JSON record beside the pool's files, in `<pool>/.vmigrate/volumes/`, written atomically
 * after the volume exists: a volume without its record is one whose creation did not finish, and a retry makes it
 * again. An instance keeps its spec and owner in the domain's own metadata.
 *
 *   pool volume   <project>--<name>                        raw, sparse; a qcow2 overlay over its base for a clone
 *   record        <pool>/.vmigrate/volumes/<volume>.json
 *   domain        <project>-<name>, metadata vmigrate:instance (migration, spec, flavor)
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BlockTarget } from '../../copy/block-device';
import { readJsonIfExists, writeFileAtomically } from '../../storage/durable-file';
import { FileBlockTarget } from '../local/file-block-target';
import { FlavorCatalog } from '../local/flavor-catalog';
import { checkResourceName } from '../local/resource-names';
import { KeyedMutex } from '../keyed-mutex';
import type { LibvirtTargetConfig } from '../target-config';
import { TargetNotFoundError, TargetRequestError } from '../target-errors';
import type {
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
import { canonicalJson } from '../canonical-json';
import { checkInstanceSpec, sameOwner } from '../instance-spec-check';
import { esc, renderDomainXml, unescapeXml, type DomainDisk, type NicSource } from './domain-xml';
import { LibvirtHosts } from './libvirt-hosts';
import { LibvirtPoolVolumes } from './libvirt-pool-volumes';
import { isNoDomain } from './virsh';

interface VolumeRecord {
  id: string;
  project: string;
  name: string;
  /** The volume's name in the pool. */
  poolVolume: string;
  sizeBytes: number;
  volumeType: string;
  owner: VolumeOwner;
  metadata: Record<string, string>;
  bootable: boolean;
  boot?: BootProperties;
  createdAt: string;
  format: 'raw' | 'qcow2';
  /** Clones: the base's record id. */
  baseVolumeId?: string;
}

/** What the domain's metadata keeps of the instance (JSON in vmigrate:record). */
interface InstanceMetadata {
  migrationId: string;
  project: string;
  name: string;
  spec: InstanceSpec;
  flavor: Flavor;
}

const NS = 'https://vmigrate.dev/xmlns/instance/1';
const START_TIMEOUT_MS = 120_000;

export class LibvirtTargetProvider implements TargetProvider {
  readonly kind = 'libvirt';
  readonly capabilities: TargetCapabilities;
  readonly hosts: LibvirtHosts;
  /** The host migrated VMs are defined on, whose pool holds their volumes. */
  readonly landingHost: string;
  private readonly flavors: FlavorCatalog;
  private readonly pool: LibvirtPoolVolumes;
  private readonly locks = new KeyedMutex();

  constructor(
    readonly name: string,
    private readonly config: LibvirtTargetConfig,
  ) {
    this.hosts = new LibvirtHosts(name, config);
    this.landingHost = config.landingHost ?? config.hosts[0]!.name;
    this.pool = new LibvirtPoolVolumes(this.hosts.virsh(this.landingHost), this.landingHost, config.storagePool);
    this.flavors = new FlavorCatalog(config.flavors);
    this.capabilities = {
      ports: false,
      bootCheckInCloud: false,
      // The worker writes into the pool's files: on the landing host itself, unless every host mounts the pool.
      volumesOnWorkerHost: !config.sharedStorage,
      // MACs are kept in the domain; addresses, security groups, key pairs and zones are the guest's or the
      // network's business on plain KVM hosts.
      options: { keyPairs: false, fixedIps: false, securityGroups: false, floatingIps: false, availabilityZones: false, deleteVolumesOnTermination: false },
    };
  }

  async listFlavors(): Promise<Flavor[]> {
    return this.flavors.list();
  }

  /** Its flavors and the target networks its configuration maps to bridges or libvirt networks; volume types are any names. */
  async listChoices(): Promise<TargetChoices> {
    return { flavors: this.flavors.list(), networks: Object.keys(this.config.networks).map((name) => ({ name, subnets: [] })), availabilityZones: [] };
  }

  /** The pool is there, running and file-based, and every network the migration maps to is one this target knows. */
  async checkPlacement(req: PlacementCheck): Promise<string[]> {
    await this.pool.describe();
    for (const nic of req.nics) this.nicSource(nic.network);
    const warnings: string[] = [];
    for (const nic of req.nics) {
      const source = this.nicSource(nic.network);
      if ('network' in source) {
        const info = await this.hosts
          .virsh(this.landingHost)
          .fields(['net-info', source.network])
          .catch(() => undefined);
        if (!info) throw new TargetNotFoundError(`libvirt network ${source.network} (for target network '${nic.network}') does not exist on host ${this.landingHost}`);
        if (info.get('Active') !== 'yes') warnings.push(`libvirt network ${source.network} on host ${this.landingHost} is not active; start it before the instance starts`);
      }
    }
    return warnings;
  }

  async createVolume(spec: VolumeSpec): Promise<VolumeRef> {
    if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes <= 0) throw new Error(`volume ${spec.project}/${spec.name}: sizeBytes must be a positive integer, got ${spec.sizeBytes}`);
    const poolVolume = poolVolumeName(spec.project, spec.name);
    return this.locks.run(`volume:${poolVolume}`, async () => {
      const existing = await this.readRecord(poolVolume);
      if (existing) {
        checkOwner(existing, spec.owner);
        if (existing.format !== 'raw') throw new Error(`volume ${spec.project}/${spec.name} already exists as a clone`);
        if (existing.sizeBytes !== spec.sizeBytes) throw new Error(`volume ${spec.project}/${spec.name} already exists with size ${existing.sizeBytes} bytes, requested ${spec.sizeBytes}`);
        return this.toRef(existing);
      }
      // A pool volume without a record is one whose creation did not finish: nobody was handed it, so it starts anew.
      await this.pool.remove(poolVolume);
      const file = await this.pool.create(poolVolume, spec.sizeBytes, 'raw');
      await this.pool.checkReachable(file, spec.sizeBytes).catch(async (err: unknown) => {
        await this.pool.remove(poolVolume); // made for nothing: no worker here can fill it
        throw err;
      });
      const record = newRecord({ project: spec.project, name: spec.name, poolVolume, sizeBytes: spec.sizeBytes, volumeType: spec.volumeType, owner: spec.owner, metadata: spec.metadata, format: 'raw' });
      await this.writeRecord(record);
      return this.toRef(record);
    });
  }

  async findVolume(project: string, owner: VolumeOwner): Promise<VolumeRef | undefined> {
    const record = (await this.records()).find((r) => r.project === project && sameOwner(r.owner, owner));
    return record && this.toRef(record);
  }

  async openVolume(ref: VolumeRef): Promise<BlockTarget> {
    const record = await this.requireRecord(ref);
    if (record.format !== 'raw') throw new Error(`volume ${ref.project}/${ref.name} is a ${record.format} clone; attach it (attachVolume) and use qemu tools`);
    return FileBlockTarget.open(await this.pool.pathOf(record.poolVolume), record.sizeBytes);
  }

  async deleteVolume(ref: VolumeRef): Promise<void> {
    const poolVolume = poolVolumeName(ref.project, ref.name);
    await this.locks.run(`volume:${poolVolume}`, async () => {
      const record = await this.readRecord(poolVolume);
      if (!record) return;
      if (record.id !== ref.id) throw new Error(`volume ${ref.project}/${ref.name} is ${record.id}, not ${ref.id}; not deleting it`);
      const clones = (await this.records()).filter((r) => r.baseVolumeId === record.id).map((r) => r.name);
      if (clones.length) throw new Error(`volume ${ref.project}/${ref.name} is the base of clone(s) ${clones.join(', ')}; delete them first`);
      // The record first: a volume half deleted is one that does not exist.
      await rm(await this.recordPath(poolVolume), { force: true });
      await this.pool.remove(poolVolume);
    });
  }

  async setVolumeBootable(ref: VolumeRef, boot: BootProperties, metadata: Record<string, string>): Promise<void> {
    const poolVolume = poolVolumeName(ref.project, ref.name);
    await this.locks.run(`volume:${poolVolume}`, async () => {
      const record = await this.requireRecord(ref);
      await this.writeRecord({ ...record, bootable: true, boot, metadata: { ...record.metadata, ...metadata } });
    });
  }

  /** A qcow2 overlay in the pool whose backing file is the base's: writes stay in the overlay. */
  async cloneVolume(base: VolumeRef, spec: { name: string; owner: VolumeOwner; metadata?: Record<string, string> }): Promise<VolumeRef> {
    const baseRecord = await this.requireRecord(base);
    if (baseRecord.format !== 'raw') throw new Error(`volume ${base.project}/${base.name} is itself a clone; clone its base instead`);
    const poolVolume = poolVolumeName(base.project, spec.name);
    return this.locks.run(`volume:${poolVolume}`, async () => {
      const existing = await this.readRecord(poolVolume);
      if (existing) {
        checkOwner(existing, spec.owner);
        if (existing.baseVolumeId !== baseRecord.id) throw new Error(`volume ${base.project}/${spec.name} already exists and is not a clone of ${base.name} (${base.id})`);
        return this.toRef(existing);
      }
      await this.pool.remove(poolVolume);
      const basePath = await this.pool.pathOf(baseRecord.poolVolume);
      await this.pool.create(poolVolume, baseRecord.sizeBytes, { qcow2OverRaw: basePath });
      const record = newRecord({
        project: base.project,
        name: spec.name,
        poolVolume,
        sizeBytes: baseRecord.sizeBytes,
        volumeType: baseRecord.volumeType,
        owner: spec.owner,
        metadata: spec.metadata,
        format: 'qcow2',
        baseVolumeId: baseRecord.id,
      });
      await this.writeRecord(record);
      return this.toRef(record);
    });
  }

  /** The pool's files are what the worker opens: the path, nothing to detach. */
  async attachVolume(ref: VolumeRef): Promise<VolumeAttachment> {
    const record = await this.requireRecord(ref);
    return { path: await this.pool.pathOf(record.poolVolume), format: record.format, detach: async () => undefined };
  }

  async createInstance(spec: InstanceSpec): Promise<InstanceRef> {
    const flavor = this.flavors.get(spec.flavor);
    checkInstanceSpec(spec);
    const nicSources = spec.nics.map((n) => this.nicSource(n.network));
    const disks: DomainDisk[] = [];
    for (const ref of spec.volumes) {
      if (ref.project !== spec.project) throw new Error(`instance ${spec.project}/${spec.name}: volume ${ref.project}/${ref.name} belongs to another project`);
      const record = await this.requireRecord(ref);
      const base = record.baseVolumeId ? (await this.records()).find((r) => r.id === record.baseVolumeId) : undefined;
      disks.push({
        file: await this.pool.pathOf(record.poolVolume),
        format: record.format,
        ...(base ? { backingFile: await this.pool.pathOf(base.poolVolume) } : {}),
      });
    }
    const domain = domainName(spec.project, spec.name);
    return this.locks.run(`instance:${domain}`, async () => {
      const existing = await this.findInstance(spec.project, spec.name);
      if (existing) {
        if (canonicalJson(existing.meta.spec) !== canonicalJson(spec)) {
          throw new TargetRequestError(`domain ${domain} already exists on host ${existing.host} with a different spec; choose another target.instanceName or undefine that domain`);
        }
        return existing.ref;
      }
      const meta: InstanceMetadata = { migrationId: spec.migrationId, project: spec.project, name: spec.name, spec, flavor };
      const xml = renderDomainXml(randomUUID(), spec, flavor, disks, {
        virtType: this.config.virtType,
        nicSources,
        consoleLog: `/var/log/libvirt/qemu/${domain}-console.log`,
        metadataXml: [`<vmigrate:migration>${esc(spec.migrationId)}</vmigrate:migration>`, `<vmigrate:record>${esc(JSON.stringify(meta))}</vmigrate:record>`],
      });
      await this.withXmlFile(xml, (file) => this.hosts.virsh(this.landingHost).run(['define', file]));
      const made = await this.findInstance(spec.project, spec.name);
      if (!made) throw new Error(`domain ${domain} was defined on ${this.landingHost} but is not found there`);
      return made.ref;
    });
  }

  async getInstance(ref: Pick<InstanceRef, 'project' | 'name'>): Promise<InstanceRef | undefined> {
    return (await this.findInstance(ref.project, ref.name))?.ref;
  }

  async startInstance(ref: Pick<InstanceRef, 'project' | 'name'>): Promise<InstanceRef> {
    const found = await this.findInstance(ref.project, ref.name);
    if (!found) throw new Error(`instance ${ref.project}/${ref.name} does not exist on any host of target ${this.name}`);
    if (found.ref.status === 'ACTIVE') return found.ref;
    const domain = domainName(ref.project, ref.name);
    await this.hosts.virsh(found.host).run(['start', domain]);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const now = await this.findInstance(ref.project, ref.name);
      if (now?.ref.status === 'ACTIVE') return now.ref;
      if (Date.now() > deadline) throw new Error(`domain ${domain} on ${found.host} did not reach running within ${START_TIMEOUT_MS / 1000} s (it is ${now?.state ?? 'gone'})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async describeInstance(ref: Pick<InstanceRef, 'project' | 'name'>): Promise<InstanceDescription | undefined> {
    const found = await this.findInstance(ref.project, ref.name);
    return found && { instance: found.ref, spec: found.meta.spec, flavor: found.meta.flavor };
  }

  /** The migration's domains (stopped and undefined, on whichever host they are now) and, unless kept, its volumes. */
  async releaseMigration(req: ReleaseRequest): Promise<ReleaseReport> {
    const report: ReleaseReport = { deletedVolumes: [], deletedPorts: [], deletedInstances: [] };
    for (const h of this.config.hosts) {
      const v = this.hosts.virsh(h.name);
      const names = (await v.run(['list', '--all', '--name'])).split('\n').map((l) => l.trim()).filter(Boolean);
      for (const domain of names) {
        const meta = await this.metadataOf(h.name, domain);
        if (!meta || meta.migrationId !== req.migrationId || meta.project !== req.project) continue;
        await v.run(['destroy', domain]).catch(() => undefined); // not running is fine
        await v.run(['undefine', '--nvram', domain]).catch(async () => v.run(['undefine', domain]));
        report.deletedInstances.push(meta.name);
      }
    }
    if (req.keepVolumes) return report;
    const owned = (await this.records()).filter((r) => r.project === req.project && r.owner.migrationId === req.migrationId);
    for (const r of [...owned.filter((x) => x.format === 'qcow2'), ...owned.filter((x) => x.format === 'raw')]) {
      await this.deleteVolume(this.toRef(r));
      report.deletedVolumes.push(r.name);
    }
    return report;
  }

  /** The bridge or libvirt network a migration's target network maps to; an unmapped one is refused by name. */
  private nicSource(network: string): NicSource {
    const mapped = this.config.networks[network];
    if (!mapped) {
      const known = Object.keys(this.config.networks);
      throw new TargetNotFoundError(`network '${network}' is not mapped in target ${this.name}'s networks (${known.length ? known.join(', ') : 'none configured'}); add it as {"bridge": …} or {"network": …}`);
    }
    return mapped;
  }

  /** The domain of an instance, on whichever host it runs now (live migration moves it), with its state. */
  private async findInstance(project: string, name: string): Promise<{ host: string; state: string; ref: InstanceRef; meta: InstanceMetadata } | undefined> {
    const domain = domainName(project, name);
    for (const where of await this.hosts.locate(domain)) {
      const meta = await this.metadataOf(where.host, domain);
      if (!meta || meta.project !== project || meta.name !== name) continue;
      const id = (await this.hosts.virsh(where.host).run(['domuuid', domain])).trim();
      return { host: where.host, state: where.state, meta, ref: { target: this.name, project, name, id, status: statusOf(where.state) } };
    }
    return undefined;
  }

  /** vmigrate's record in a domain's metadata; undefined for a domain vmigrate did not make. */
  private async metadataOf(host: string, domain: string): Promise<InstanceMetadata | undefined> {
    let xml: string;
    try {
      xml = await this.hosts.virsh(host).run(['metadata', domain, NS]);
    } catch (err) {
      if (isNoDomain(err)) return undefined;
      // libvirt's "metadata not found" for domains without our element.
      if (/metadata not found|Requested metadata element is not present/i.test((err as Error).message)) return undefined;
      throw err;
    }
    const text = /<(?:\w+:)?record>([^<]*)<\/(?:\w+:)?record>/.exec(xml)?.[1];
    return text ? (JSON.parse(unescapeXml(text)) as InstanceMetadata) : undefined;
  }

  private async withXmlFile<T>(xml: string, use: (file: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-domain-'));
    try {
      const file = path.join(dir, 'domain.xml');
      await writeFile(file, xml);
      return await use(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async recordsDir(): Promise<string> {
    return path.join((await this.pool.describe()).path, '.vmigrate', 'volumes');
  }

  private async recordPath(poolVolume: string): Promise<string> {
    return path.join(await this.recordsDir(), `${poolVolume}.json`);
  }

  private async readRecord(poolVolume: string): Promise<VolumeRecord | undefined> {
    return readJsonIfExists<VolumeRecord>(await this.recordPath(poolVolume));
  }

  private async writeRecord(record: VolumeRecord): Promise<void> {
    await writeFileAtomically(await this.recordPath(record.poolVolume), JSON.stringify(record, null, 2));
  }

  private async records(): Promise<VolumeRecord[]> {
    const dir = await this.recordsDir();
    const out: VolumeRecord[] = [];
    for (const f of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'))) {
      const r = await readJsonIfExists<VolumeRecord>(path.join(dir, f));
      if (r) out.push(r);
    }
    return out;
  }

  private async requireRecord(ref: VolumeRef): Promise<VolumeRecord> {
    const record = await this.readRecord(poolVolumeName(ref.project, ref.name));
    if (!record) throw new Error(`volume ${ref.project}/${ref.name} does not exist in pool ${this.config.storagePool} on ${this.landingHost}`);
    if (record.id !== ref.id) throw new Error(`volume ${ref.project}/${ref.name} is ${record.id}, not ${ref.id} (recreated?)`);
    return record;
  }

  private toRef(r: VolumeRecord): VolumeRef {
    return { target: this.name, project: r.project, name: r.name, id: r.id, sizeBytes: r.sizeBytes, volumeType: r.volumeType };
  }
}

function newRecord(fields: Omit<VolumeRecord, 'id' | 'metadata' | 'bootable' | 'createdAt'> & { metadata?: Record<string, string> }): VolumeRecord {
  return { ...fields, id: randomUUID(), metadata: { ...(fields.metadata ?? {}) }, bootable: false, createdAt: new Date().toISOString() };
}

/** One pool holds every project's volumes: the project is part of the name (names are files in the pool). */
function poolVolumeName(project: string, name: string): string {
  return `${checkResourceName('project', project)}--${checkResourceName('volume', name)}`;
}

function domainName(project: string, name: string): string {
  return `${checkResourceName('project', project)}-${checkResourceName('instance', name)}`;
}

function statusOf(state: string): InstanceRef['status'] {
  if (state === 'running' || state === 'paused' || state === 'idle' || state === 'in shutdown') return 'ACTIVE';
  if (state === 'shut off') return 'SHUTOFF';
  if (state === 'crashed') return 'ERROR';
  return 'BUILD';
}

function checkOwner(record: VolumeRecord, owner: VolumeOwner): void {
  if (!sameOwner(record.owner, owner)) {
    throw new Error(`volume ${record.project}/${record.name} already exists for migration ${record.owner.migrationId} disk ${record.owner.disk}, not for migration ${owner.migrationId} disk ${owner.disk}`);
  }
}
