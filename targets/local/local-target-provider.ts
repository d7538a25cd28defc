/**
 * The local target: a stand-in for a cloud that keeps everything under one data directory, for trying vmigrate
 * without a cloud and for tests. Volumes are sparse raw files, instances are a JSON record plus the libvirt domain
 * XML a KVM host would define (nothing starts it). targets/openstack/ is the real cloud.
 *
 *   <dataDir>/volumes/<project>/<volume>               raw, sparse; or a qcow2 overlay for a clone (cloneVolume)
 *   <dataDir>/volumes/<project>/.meta/<volume>.json    sidecar; its presence is what makes the volume exist
 *   <dataDir>/instances/<project>/<name>.json|.xml
 *
 * Names are unique per project here (they are file names); a volume also records its owner, and a create with
 * another owner's name is refused. Creates are serialized per name within the process; the JSON record is written
 * last (atomically), so a crash mid-create leaves nothing a retry would mistake for a finished resource.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';
import * as path from 'node:path';
import type { BlockTarget } from '../../copy/block-device';
import type {
  BootProperties,
  Flavor,
  InstanceDescription,
  InstanceRef,
  InstanceSpec,
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
import { renderDomainXml, type DomainDisk } from '../libvirt/domain-xml';
import { readJsonIfExists, syncDirectory, writeFileAtomically } from '../../storage/durable-file';
import { FileBlockTarget } from './file-block-target';
import { FlavorCatalog } from './flavor-catalog';
import { KeyedMutex } from '../keyed-mutex';
import { TargetRequestError } from '../target-errors';
import { checkResourceName } from './resource-names';
import { canonicalJson } from '../canonical-json';
import { checkInstanceSpec, sameOwner } from '../instance-spec-check';

export interface LocalTargetOptions {
  /** The target's name in the configuration (default "local"). */
  name?: string;
  dataDir: string;
  /** Defaults to DEFAULT_FLAVORS (m1.small … m1.xlarge). */
  flavors?: readonly Flavor[];
  /** `dataDir` is mounted by every worker at the same path; otherwise it is this host's own. */
  sharedStorage?: boolean;
}

interface VolumeRecord {
  id: string;
  project: string;
  name: string;
  sizeBytes: number;
  volumeType: string;
  metadata: Record<string, string>;
  /** Absent on volumes made before volumes had owners. */
  owner?: VolumeOwner;
  bootable: boolean;
  boot?: BootProperties;
  createdAt: string;
  /** Absent for raw volumes. */
  format?: 'qcow2';
  /** Clones: the base volume's name and id (a base recreated under the same name is not this clone's base). */
  baseVolume?: string;
  baseVolumeId?: string;
}

interface InstanceRecord {
  id: string;
  project: string;
  name: string;
  status: InstanceRef['status'];
  migrationId?: string;
  flavor: Flavor;
  /** Canonical JSON of the spec it was created from; a retry must match it. */
  spec: string;
  createdAt: string;
}

const run = promisify(execFile);

export class LocalTargetProvider implements TargetProvider {
  readonly kind = 'local';
  readonly name: string;
  readonly capabilities: TargetCapabilities;
  readonly dataDir: string;
  private readonly flavors: FlavorCatalog;
  private readonly locks = new KeyedMutex();

  constructor(opts: LocalTargetOptions) {
    this.name = opts.name ?? 'local';
    this.dataDir = path.resolve(opts.dataDir);
    this.flavors = new FlavorCatalog(opts.flavors);
    this.capabilities = {
      ports: false,
      bootCheckInCloud: false,
      volumesOnWorkerHost: !opts.sharedStorage,
      // The stand-in records the zone and keeps MACs in its domain XML; it has no key pairs, IP management,
      // security groups, floating IPs, or instance deletion.
      options: { keyPairs: false, fixedIps: false, securityGroups: false, floatingIps: false, availabilityZones: true, deleteVolumesOnTermination: false },
    };
  }

  async listFlavors(_project?: string): Promise<Flavor[]> {
    return this.flavors.list();
  }

  /** Its flavors; volume types and networks are any names (recorded with the volume and instance). */
  async listChoices(): Promise<TargetChoices> {
    return { flavors: this.flavors.list() };
  }

  /** Anything is placeable here: volume types and networks are only names recorded with the volume and instance. */
  async checkPlacement(): Promise<string[]> {
    return [];
  }

  volumePath(project: string, name: string): string {
    return path.join(this.dataDir, 'volumes', checkResourceName('project', project), checkResourceName('volume', name));
  }

  instanceXmlPath(project: string, name: string): string {
    return path.join(this.instanceDir(project), `${checkResourceName('instance', name)}.xml`);
  }

  async createVolume(spec: VolumeSpec): Promise<VolumeRef> {
    const file = this.volumePath(spec.project, spec.name);
    if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes <= 0) {
      throw new Error(`volume ${spec.project}/${spec.name}: sizeBytes must be a positive integer, got ${spec.sizeBytes}`);
    }
    if (!spec.volumeType) throw new Error(`volume ${spec.project}/${spec.name}: volumeType is required`);
    return this.locks.run(`volume:${file}`, async () => {
      const existing = await this.readVolume(spec.project, spec.name);
      if (existing) {
        this.checkOwner(existing, spec.owner);
        if (existing.format) throw new Error(`volume ${spec.project}/${spec.name} already exists as a clone of ${existing.baseVolume}`);
        if (existing.sizeBytes !== spec.sizeBytes) {
          throw new Error(
            `volume ${spec.project}/${spec.name} already exists with size ${existing.sizeBytes} bytes, requested ${spec.sizeBytes}`,
          );
        }
        return this.toVolumeRef(existing);
      }
      await fs.mkdir(path.dirname(file), { recursive: true });
      // No sidecar means no one was ever handed this volume: start from a fresh, fully sparse (all-zero) file.
      const handle = await fs.open(file, 'w');
      try {
        await handle.truncate(spec.sizeBytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await syncDirectory(path.dirname(file));
      const record: VolumeRecord = {
        id: randomUUID(),
        project: spec.project,
        name: spec.name,
        sizeBytes: spec.sizeBytes,
        volumeType: spec.volumeType,
        metadata: { ...(spec.metadata ?? {}) },
        owner: spec.owner,
        bootable: false,
        createdAt: new Date().toISOString(),
      };
      await writeFileAtomically(this.sidecarPath(spec.project, spec.name), JSON.stringify(record, null, 2));
      return this.toVolumeRef(record);
    });
  }

  /** By name: names are unique in the local target. */
  async getVolume(project: string, name: string): Promise<VolumeRef | undefined> {
    const record = await this.readVolume(project, name);
    return record && this.toVolumeRef(record);
  }

  async findVolume(project: string, owner: VolumeOwner): Promise<VolumeRef | undefined> {
    const record = (await this.volumeRecords(project)).find((r) => r.owner && sameOwner(r.owner, owner));
    return record && this.toVolumeRef(record);
  }

  async openVolume(ref: VolumeRef): Promise<BlockTarget> {
    const record = await this.requireVolume(ref);
    // Byte-level access to a qcow2 file would read its container format, not the disk it holds.
    if (record.format) throw new Error(`volume ${ref.project}/${ref.name} is a ${record.format} clone; attach it (attachVolume) and use qemu tools`);
    return FileBlockTarget.open(this.volumePath(ref.project, ref.name), record.sizeBytes);
  }

  /**
   * A qcow2 overlay whose backing file is the base's raw file (by a relative name, so the data directory can move).
   * Nothing ever writes to the base through it; the base must not change while the clone exists (a later sync into
   * the base invalidates the clone: delete it and clone again).
   */
  async cloneVolume(base: VolumeRef, spec: { name: string; owner: VolumeOwner; metadata?: Record<string, string> }): Promise<VolumeRef> {
    const baseRecord = await this.requireVolume(base);
    if (baseRecord.format) throw new Error(`volume ${base.project}/${base.name} is itself a clone; clone its base ${baseRecord.baseVolume} instead`);
    const file = this.volumePath(base.project, spec.name);
    return this.locks.run(`volume:${file}`, async () => {
      const existing = await this.readVolume(base.project, spec.name);
      if (existing) {
        this.checkOwner(existing, spec.owner);
        if (existing.baseVolumeId !== baseRecord.id) {
          throw new Error(`volume ${base.project}/${spec.name} already exists and is not a clone of ${base.name} (${base.id})`);
        }
        return this.toVolumeRef(existing);
      }
      await fs.rm(file, { force: true }); // a file without a sidecar is a clone whose creation did not finish
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.basename(this.volumePath(base.project, base.name)), '-F', 'raw', file], {
        cwd: path.dirname(file),
      });
      const handle = await fs.open(file, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await syncDirectory(path.dirname(file));
      const record: VolumeRecord = {
        id: randomUUID(),
        project: base.project,
        name: spec.name,
        sizeBytes: baseRecord.sizeBytes,
        volumeType: baseRecord.volumeType,
        metadata: { ...(spec.metadata ?? {}) },
        owner: spec.owner,
        bootable: false,
        createdAt: new Date().toISOString(),
        format: 'qcow2',
        baseVolume: base.name,
        baseVolumeId: baseRecord.id,
      };
      await writeFileAtomically(this.sidecarPath(base.project, spec.name), JSON.stringify(record, null, 2));
      return this.toVolumeRef(record);
    });
  }

  /** How a volume is stored here: raw, or a qcow2 clone over its base's file. */
  async volumeStorage(ref: VolumeRef): Promise<{ format: 'raw' | 'qcow2'; baseVolume?: string }> {
    const record = await this.requireVolume(ref);
    return record.format ? { format: record.format, baseVolume: record.baseVolume } : { format: 'raw' };
  }

  /** Local volumes are files already: the path, nothing to detach. */
  async attachVolume(ref: VolumeRef): Promise<VolumeAttachment> {
    const record = await this.requireVolume(ref);
    return { path: this.volumePath(ref.project, ref.name), format: record.format ?? 'raw', detach: async () => undefined };
  }

  async deleteVolume(ref: VolumeRef): Promise<void> {
    const file = this.volumePath(ref.project, ref.name);
    await this.locks.run(`volume:${file}`, async () => {
      const record = await this.readVolume(ref.project, ref.name);
      if (!record) return; // already gone: deleting is idempotent
      if (record.id !== ref.id) throw new Error(`volume ${ref.project}/${ref.name} is ${record.id}, not ${ref.id}; not deleting it`);
      const clones = await this.clonesOf(record);
      if (clones.length) throw new Error(`volume ${ref.project}/${ref.name} is the base of clone(s) ${clones.join(', ')}; delete them first`);
      await fs.rm(this.sidecarPath(ref.project, ref.name), { force: true }); // first, so a half-deleted volume is absent
      await fs.rm(file, { force: true });
    });
  }

  async setVolumeBootable(ref: VolumeRef, boot: BootProperties, metadata: Record<string, string>): Promise<void> {
    const file = this.volumePath(ref.project, ref.name);
    await this.locks.run(`volume:${file}`, async () => {
      const record = await this.requireVolume(ref);
      const updated: VolumeRecord = { ...record, bootable: true, boot, metadata: { ...record.metadata, ...metadata } };
      await writeFileAtomically(this.sidecarPath(ref.project, ref.name), JSON.stringify(updated, null, 2));
    });
  }

  async createInstance(spec: InstanceSpec): Promise<InstanceRef> {
    const recordPath = this.instanceRecordPath(spec.project, spec.name);
    const flavor = this.flavors.get(spec.flavor);
    checkInstanceSpec(spec);
    const disks: DomainDisk[] = [];
    for (const ref of spec.volumes) {
      if (ref.project !== spec.project) {
        throw new Error(`instance ${spec.project}/${spec.name}: volume ${ref.project}/${ref.name} belongs to another project`);
      }
      const record = await this.requireVolume(ref);
      disks.push({
        file: this.volumePath(ref.project, ref.name),
        format: record.format ?? 'raw',
        ...(record.baseVolume ? { backingFile: this.volumePath(ref.project, record.baseVolume) } : {}),
      });
    }
    const canonicalSpec = canonicalJson(spec);
    return this.locks.run(`instance:${recordPath}`, async () => {
      const existing = await readJsonIfExists<InstanceRecord>(recordPath);
      if (existing) {
        if (existing.spec !== canonicalSpec) {
          // Another migration (or an earlier one of the same VM) owns the name: retrying cannot free it.
          throw new TargetRequestError(`instance ${spec.project}/${spec.name} already exists with a different spec; choose another target.instanceName or delete that instance`);
        }
        return this.toInstanceRef(existing);
      }
      const id = randomUUID();
      // The XML first, the record last: the record is the commit point a retry looks for.
      await writeFileAtomically(this.instanceXmlPath(spec.project, spec.name), renderDomainXml(id, spec, flavor, disks));
      const record: InstanceRecord = {
        id,
        project: spec.project,
        name: spec.name,
        status: 'SHUTOFF',
        migrationId: spec.migrationId,
        flavor,
        spec: canonicalSpec,
        createdAt: new Date().toISOString(),
      };
      await writeFileAtomically(recordPath, JSON.stringify(record, null, 2));
      return this.toInstanceRef(record);
    });
  }

  async getInstance(ref: Pick<InstanceRef, 'project' | 'name'>): Promise<InstanceRef | undefined> {
    const record = await readJsonIfExists<InstanceRecord>(this.instanceRecordPath(ref.project, ref.name));
    return record && this.toInstanceRef(record);
  }

  /**
   * The local stand-in runs no hypervisor: starting records the instance as ACTIVE (what a cloud's API would report)
   * next to its libvirt XML, which `virsh define` + `virsh start` would boot.
   */
  async startInstance(ref: Pick<InstanceRef, 'project' | 'name'>): Promise<InstanceRef> {
    const { project, name } = ref;
    const recordPath = this.instanceRecordPath(project, name);
    return this.locks.run(`instance:${recordPath}`, async () => {
      const record = await readJsonIfExists<InstanceRecord>(recordPath);
      if (!record) throw new Error(`instance ${project}/${name} does not exist`);
      if (record.status !== 'ACTIVE') {
        record.status = 'ACTIVE';
        await writeFileAtomically(recordPath, JSON.stringify(record, null, 2));
      }
      return this.toInstanceRef(record);
    });
  }

  async describeInstance(ref: Pick<InstanceRef, 'project' | 'name'>): Promise<InstanceDescription | undefined> {
    const record = await readJsonIfExists<InstanceRecord>(this.instanceRecordPath(ref.project, ref.name));
    return record && { instance: this.toInstanceRef(record), spec: JSON.parse(record.spec) as InstanceSpec, flavor: record.flavor };
  }

  /** The local target has no ports; the migration's instance record and (unless kept) its volumes go, clones first. */
  async releaseMigration(req: ReleaseRequest): Promise<ReleaseReport> {
    const report: ReleaseReport = { deletedVolumes: [], deletedPorts: [], deletedInstances: [] };
    const instanceDir = this.instanceDir(req.project);
    for (const f of (await fs.readdir(instanceDir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'))) {
      const record = await readJsonIfExists<InstanceRecord>(path.join(instanceDir, f));
      if (record?.migrationId !== req.migrationId) continue;
      await fs.rm(this.instanceRecordPath(req.project, record.name), { force: true }); // the record first: it is the commit point
      await fs.rm(this.instanceXmlPath(req.project, record.name), { force: true });
      report.deletedInstances.push(record.name);
    }
    if (req.keepVolumes) return report;
    const owned = (await this.volumeRecords(req.project)).filter((r) => r.owner?.migrationId === req.migrationId);
    for (const r of [...owned.filter((x) => x.format), ...owned.filter((x) => !x.format)]) {
      await this.deleteVolume(this.toVolumeRef(r));
      report.deletedVolumes.push(r.name);
    }
    return report;
  }

  private async volumeRecords(project: string): Promise<VolumeRecord[]> {
    const metaDir = path.join(this.dataDir, 'volumes', checkResourceName('project', project), '.meta');
    const names = (await fs.readdir(metaDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json'));
    const records: VolumeRecord[] = [];
    for (const f of names) {
      const r = await readJsonIfExists<VolumeRecord>(path.join(metaDir, f));
      if (r) records.push(r);
    }
    return records;
  }

  private checkOwner(record: VolumeRecord, owner: VolumeOwner): void {
    if (record.owner && !sameOwner(record.owner, owner)) {
      throw new Error(
        `volume ${record.project}/${record.name} already exists for migration ${record.owner.migrationId} disk ${record.owner.disk}, ` +
          `not for migration ${owner.migrationId} disk ${owner.disk}`,
      );
    }
  }

  private toVolumeRef(r: VolumeRecord): VolumeRef {
    return { target: this.name, project: r.project, name: r.name, id: r.id, sizeBytes: r.sizeBytes, volumeType: r.volumeType };
  }

  private toInstanceRef(r: InstanceRecord): InstanceRef {
    return { target: this.name, project: r.project, name: r.name, id: r.id, status: r.status };
  }

  private async clonesOf(base: VolumeRecord): Promise<string[]> {
    return (await this.volumeRecords(base.project)).filter((r) => r.baseVolumeId === base.id).map((r) => r.name);
  }

  private instanceDir(project: string): string {
    return path.join(this.dataDir, 'instances', checkResourceName('project', project));
  }

  private instanceRecordPath(project: string, name: string): string {
    return path.join(this.instanceDir(project), `${checkResourceName('instance', name)}.json`);
  }

  private sidecarPath(project: string, name: string): string {
    return path.join(path.dirname(this.volumePath(project, name)), '.meta', `${name}.json`);
  }

  private readVolume(project: string, name: string): Promise<VolumeRecord | undefined> {
    return readJsonIfExists<VolumeRecord>(this.sidecarPath(project, name));
  }

  private async requireVolume(ref: VolumeRef): Promise<VolumeRecord> {
    const record = await this.readVolume(ref.project, ref.name);
    if (!record) throw new Error(`volume ${ref.project}/${ref.name} does not exist`);
    if (record.id !== ref.id) throw new Error(`volume ${ref.project}/${ref.name} is ${record.id}, not ${ref.id} (recreated?)`);
    return record;
  }
}
