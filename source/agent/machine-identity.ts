import { createHash } from 'node:crypto';
import type { DiscoveredMachine } from './discovered-machine';

/**
 * A machine booted from the agent's ISO is the same machine after a reboot: same firmware UUID, same disks (serial
 * and size). Its identity is a hash of those, so a second boot joins the migration the first one started. Without a
 * firmware UUID (some firmware reports none, or all zeros) the NICs' MACs stand in for it.
 */
export function machineIdentity(m: Pick<DiscoveredMachine, 'firmwareUuid' | 'disks' | 'nics'>): string {
  const uuid = (m.firmwareUuid ?? '').toLowerCase();
  const usable = uuid && !/^[0-]*$/.test(uuid) && !/^f{8}-f{4}-f{4}-f{4}-f{12}$/.test(uuid);
  const h = createHash('sha256').update('vmigrate-machine/1\n');
  h.update(usable ? `uuid:${uuid}\n` : `macs:${m.nics.map((n) => n.mac.toLowerCase()).sort().join(',')}\n`);
  for (const d of [...m.disks].sort((a, b) => a.index - b.index)) h.update(`disk:${d.serial ?? ''}:${d.sizeBytes}\n`);
  return `m-${h.digest('hex').slice(0, 20)}`;
}
