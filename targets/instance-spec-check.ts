import type { InstanceSpec, VolumeOwner } from './target-provider';

const IDE_MAX_DISKS = 4;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** What no hypervisor can boot, refused before anything is made: an IDE bus on q35, too many IDE disks, a bad MAC. */
export function checkInstanceSpec(spec: InstanceSpec): void {
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

export function sameOwner(a: VolumeOwner, b: VolumeOwner): boolean {
  return a.migrationId === b.migrationId && a.disk === b.disk;
}
