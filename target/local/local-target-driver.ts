/**
 * The embedded target: a stand-in for a cloud that keeps everything under one data directory. Volumes are sparse
 * raw files, instances are a JSON record plus the libvirt domain XML a KVM host would define. An OpenStack driver
 * (Cinder volumes, Nova servers, Neutron ports) implements the same TargetDriver interface.
 *
 *   <dataDir>/volumes/<project>/<volume>               raw, sparse
 *   <dataDir>/volumes/<project>/.meta/<volume>.json    sidecar; its presence is what makes the volume exist
 *   <dataDir>/instances/<project>/<name>.json|.xml
 *
 * Creates are idempotent by (project, name) and serialized per name within the process; the JSON record is written
 * last (atomically), so a crash mid-create leaves nothing a retry would mistake for a finished resource.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BlockTarget } from '../../copy/block-device';
import type { Flavor, InstanceRef, InstanceSpec, TargetDriver, VolumeRef, VolumeSpec } from '../target-driver';
import { renderDomainXml, type DomainDisk } from './domain-xml';
import { readJsonIfExists, syncDirectory, writeFileAtomically } from '../../storage/durable-file';
import { FileBlockTarget } from './file-block-target';
import { FlavorCatalog } from './flavor-catalog';
import { KeyedMutex } from './keyed-mutex';
import { checkResourceName } from './resource-names';

export interface LocalTargetOptions {
  dataDir: string;
  /** Defaults to DEFAULT_FLAVORS (m1.small … m1.xlarge). */
  flavors?: readonly Flavor[];
}

interface VolumeRecord {
  id: string;
  project: string;
  name: string;
  sizeBytes: number;
  volumeType: string;
  metadata: Record<string, string>;
  bootable: boolean;
  createdAt: string;
}

interface InstanceRecord {
  id: string;
  project: string;
  name: string;
  status: InstanceRef['status'];
  flavor: Flavor;
  /** Canonical JSON of the spec it was created from; a retry must match it. */
  spec: string;
  createdAt: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IDE_MAX_DISKS = 4;

export class LocalTargetDriver implements TargetDriver {
  readonly kind = 'local';
  readonly dataDir: string;
  private readonly flavors: FlavorCatalog;
  private readonly locks = new KeyedMutex();

  constructor(opts: LocalTargetOptions) {
    this.dataDir = path.resolve(opts.dataDir);
    this.flavors = new FlavorCatalog(opts.flavors);
  }

  async listFlavors(): Promise<Flavor[]> {
    return this.flavors.list();
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
        if (existing.sizeBytes !== spec.sizeBytes) {
          throw new Error(
            `volume ${spec.project}/${spec.name} already exists with size ${existing.sizeBytes} bytes, requested ${spec.sizeBytes}`,
          );
        }
        return toVolumeRef(existing);
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
        bootable: false,
        createdAt: new Date().toISOString(),
      };
      await writeFileAtomically(this.sidecarPath(spec.project, spec.name), JSON.stringify(record, null, 2));
      return toVolumeRef(record);
    });
  }

  async getVolume(project: string, name: string): Promise<VolumeRef | undefined> {
    const record = await this.readVolume(project, name);
    return record && toVolumeRef(record);
  }

  async openVolume(ref: VolumeRef): Promise<BlockTarget> {
    const record = await this.requireVolume(ref);
    return FileBlockTarget.open(this.volumePath(ref.project, ref.name), record.sizeBytes);
  }

  async deleteVolume(ref: VolumeRef): Promise<void> {
    const file = this.volumePath(ref.project, ref.name);
    await this.locks.run(`volume:${file}`, async () => {
      const record = await this.readVolume(ref.project, ref.name);
      if (!record) return; // already gone: deleting is idempotent
      if (record.id !== ref.id) throw new Error(`volume ${ref.project}/${ref.name} is ${record.id}, not ${ref.id}; not deleting it`);
      await fs.rm(this.sidecarPath(ref.project, ref.name), { force: true }); // first, so a half-deleted volume is absent
      await fs.rm(file, { force: true });
    });
  }

  async setVolumeBootable(ref: VolumeRef, metadata: Record<string, string>): Promise<void> {
    const file = this.volumePath(ref.project, ref.name);
    await this.locks.run(`volume:${file}`, async () => {
      const record = await this.requireVolume(ref);
      const updated: VolumeRecord = { ...record, bootable: true, metadata: { ...record.metadata, ...metadata } };
      await writeFileAtomically(this.sidecarPath(ref.project, ref.name), JSON.stringify(updated, null, 2));
    });
  }

  async createInstance(spec: InstanceSpec): Promise<InstanceRef> {
    const recordPath = this.instanceRecordPath(spec.project, spec.name);
    const flavor = this.flavors.get(spec.flavor);
    this.checkInstanceSpec(spec);
    const disks: DomainDisk[] = [];
    for (const ref of spec.volumes) {
      if (ref.project !== spec.project) {
        throw new Error(`instance ${spec.project}/${spec.name}: volume ${ref.project}/${ref.name} belongs to another project`);
      }
      await this.requireVolume(ref);
      disks.push({ file: this.volumePath(ref.project, ref.name) });
    }
    const canonicalSpec = canonicalJson(spec);
    return this.locks.run(`instance:${recordPath}`, async () => {
      const existing = await readJsonIfExists<InstanceRecord>(recordPath);
      if (existing) {
        if (existing.spec !== canonicalSpec) {
          throw new Error(`instance ${spec.project}/${spec.name} already exists with a different spec`);
        }
        return toInstanceRef(existing);
      }
      const id = randomUUID();
      // The XML first, the record last: the record is the commit point a retry looks for.
      await writeFileAtomically(this.instanceXmlPath(spec.project, spec.name), renderDomainXml(id, spec, flavor, disks));
      const record: InstanceRecord = {
        id,
        project: spec.project,
        name: spec.name,
        status: 'SHUTOFF',
        flavor,
        spec: canonicalSpec,
        createdAt: new Date().toISOString(),
      };
      await writeFileAtomically(recordPath, JSON.stringify(record, null, 2));
      return toInstanceRef(record);
    });
  }

  async getInstance(project: string, name: string): Promise<InstanceRef | undefined> {
    const record = await readJsonIfExists<InstanceRecord>(this.instanceRecordPath(project, name));
    return record && toInstanceRef(record);
  }

  private checkInstanceSpec(spec: InstanceSpec): void {
    const what = `instance ${spec.project}/${spec.name}`;
    if (spec.volumes.length === 0) throw new Error(`${what}: needs at least a boot volume`);
    if (spec.diskBus === 'ide' && spec.machineType === 'pc-q35') {
      throw new Error(`${what}: the q35 machine type has no IDE bus; use sata, scsi or virtio`);
    }
    if (spec.diskBus === 'ide' && spec.volumes.length > IDE_MAX_DISKS) {
      throw new Error(`${what}: the IDE bus takes at most ${IDE_MAX_DISKS} disks, got ${spec.volumes.length}`);
    }
    for (const nic of spec.nics) {
      if (!nic.network) throw new Error(`${what}: a NIC has no target network`);
      if (nic.preserveMac && !MAC.test(nic.sourceMac)) throw new Error(`${what}: invalid MAC address ${JSON.stringify(nic.sourceMac)}`);
    }
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

function toVolumeRef(r: VolumeRecord): VolumeRef {
  return { project: r.project, name: r.name, id: r.id, sizeBytes: r.sizeBytes, volumeType: r.volumeType };
}

function toInstanceRef(r: InstanceRecord): InstanceRef {
  return { project: r.project, name: r.name, id: r.id, status: r.status };
}

/** JSON with sorted keys and undefined dropped, so equal specs compare equal however they were built. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
