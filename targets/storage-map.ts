/**
 * Which volume type each disk's volume gets: a mapping for the disk itself wins, then one for the datastore the disk
 * lives on, then the migration's volume type. Pure, and used by the workflows (it runs in their sandbox).
 */
export interface StorageMapping {
  /** A source datastore: every disk on it … */
  datastore?: string;
  /** … or one disk, by its device key (e.g. 2001). */
  diskKey?: number;
  volumeType: string;
}

/** "[LocalDS_1] vm/vm_1.vmdk" → "LocalDS_1". */
export function datastoreOfFile(fileName: string): string | undefined {
  return /^\[([^\]]*)\]/.exec(fileName)?.[1];
}

export function volumeTypeFor(target: { volumeType: string; storageMap?: StorageMapping[] }, disk: { key: number; fileName: string }): string {
  const map = target.storageMap ?? [];
  const byDisk = map.find((m) => m.diskKey === disk.key);
  if (byDisk) return byDisk.volumeType;
  const ds = datastoreOfFile(disk.fileName);
  return map.find((m) => m.datastore !== undefined && m.datastore === ds)?.volumeType ?? target.volumeType;
}
