import { stat } from 'node:fs/promises';
import path from 'node:path';
import { TargetNotFoundError, TargetRequestError } from '../target-errors';
import { unescapeXml } from './domain-xml';
import { isNoStorageVolume, type Virsh } from './virsh';

/**
 * The volumes of one libvirt storage pool on one host, made and removed through libvirtd (`vol-create-as`,
 * `vol-delete`), so the pool's own view stays true. The pool must keep volumes as files (dir, fs or netfs pools):
 * vmigrate's worker writes a disk's bytes into that file, which it must reach at the path libvirt reports — the
 * worker runs on the host, or the pool is storage mounted at the same path on the worker.
 */
export interface PoolInfo {
  name: string;
  type: string;
  /** The directory holding the volumes' files. */
  path: string;
}

const FILE_POOL_TYPES = new Set(['dir', 'fs', 'netfs']);

export class LibvirtPoolVolumes {
  private info?: PoolInfo;

  constructor(
    private readonly virsh: Virsh,
    readonly host: string,
    readonly pool: string,
  ) {}

  /** The pool's type and directory; refuses a pool that does not exist, is not running, or is not file-based. */
  async describe(): Promise<PoolInfo> {
    if (this.info) return this.info;
    const xml = await this.virsh.run(['pool-dumpxml', this.pool]).catch((err: Error) => {
      throw new TargetNotFoundError(`host ${this.host} has no storage pool ${this.pool} (${err.message}); define it there, or set the target's storagePool`);
    });
    const type = /<pool[^>]*type=['"]([^'"]+)['"]/.exec(xml)?.[1] ?? '';
    const dir = /<target>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1];
    if (!FILE_POOL_TYPES.has(type) || !dir) {
      throw new TargetRequestError(`storage pool ${this.pool} on host ${this.host} is a ${type || 'unknown'} pool; vmigrate writes volumes as files and needs a dir, fs or netfs pool`);
    }
    const state = (await this.virsh.fields(['pool-info', this.pool])).get('State');
    if (state !== 'running') throw new TargetRequestError(`storage pool ${this.pool} on host ${this.host} is ${state ?? 'not running'}; start it (virsh pool-start ${this.pool})`);
    this.info = { name: this.pool, type, path: unescapeXml(dir) };
    return this.info;
  }

  /** A new volume's file, sparse; its path as libvirt reports it. */
  async create(name: string, sizeBytes: number, format: 'raw' | { qcow2OverRaw: string }): Promise<string> {
    const args = ['vol-create-as', '--pool', this.pool, '--name', name, '--capacity', `${sizeBytes}`, '--allocation', '0'];
    if (format === 'raw') args.push('--format', 'raw');
    else args.push('--format', 'qcow2', '--backing-vol', format.qcow2OverRaw, '--backing-vol-format', 'raw');
    await this.virsh.run(args);
    return this.pathOf(name);
  }

  async pathOf(name: string): Promise<string> {
    return (await this.virsh.run(['vol-path', '--pool', this.pool, name])).trim();
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.virsh.run(['vol-info', '--pool', this.pool, name]);
      return true;
    } catch (err) {
      if (isNoStorageVolume(err)) return false;
      throw err;
    }
  }

  /** Idempotent: a volume already gone is fine. */
  async remove(name: string): Promise<void> {
    try {
      await this.virsh.run(['vol-delete', '--pool', this.pool, name]);
    } catch (err) {
      if (!isNoStorageVolume(err)) throw err;
    }
  }

  /** The file libvirt made, as this worker sees it: it must be there, of the size asked, or the copy cannot reach it. */
  async checkReachable(file: string, sizeBytes: number): Promise<void> {
    const seen = await stat(file).catch(() => undefined);
    if (!seen || seen.size !== sizeBytes) {
      throw new TargetRequestError(
        `volume file ${file} of pool ${this.pool} on host ${this.host} is ${seen ? `${seen.size} bytes here, not ${sizeBytes}` : 'not visible to this worker'}: ` +
          `run vmigrate's worker on ${this.host}, or mount the pool's storage on the worker at ${path.dirname(file)} (sharedStorage)`,
      );
    }
  }
}
