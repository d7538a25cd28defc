/**
 * What the target must offer for a VM: a network mapping for every NIC, a flavor that fits, a machine type its
 * firmware can boot on, options the target can carry out, room in the project's quotas and free MACs. Pure: the
 * activity gathers the target's answers (flavors, quotas, ports) and these rules judge them.
 */
import type { NetworkMapping, TargetSpec } from '../shared/migration-input';
import { checkFlavorFits } from '../targets/flavor-fit';
import { planFirmware } from '../targets/firmware-plan';
import { mappingMatches, NetworkMappingError, planNics } from '../targets/network-plan';
import type { Flavor, MacConflict, NicSpec, QuotaHeadroom, TargetOptionSupport } from '../targets/target-provider';
import type { InventoryVm } from '../vsphere/vm-inventory';
import { fail, warn, type PreflightReason } from './verdict';

/** A mapping's `keepIps`: the addresses VMware Tools report on the NIC become its fixed IPs (not link-local ones). */
export function keptIps(nicIps: readonly string[]): string[] {
  return nicIps.filter((ip) => !/^fe80:/i.test(ip) && !/^169\.254\./.test(ip));
}

export interface TargetJudgement {
  reasons: PreflightReason[];
  flavor?: Flavor;
  /** The NICs as the migration will create them (keepIps resolved to the addresses found). */
  nics?: NicSpec[];
  /** The network mappings to submit: as given, with `keepIps` replaced by the addresses it kept, per NIC. */
  networks?: NetworkMapping[];
}

const OPTION_NAMES: Array<[keyof TargetOptionSupport, string, (t: TargetSpec) => boolean]> = [
  ['keyPairs', 'target.keyName', (t) => t.keyName !== undefined],
  ['fixedIps', 'networks[].fixedIps or keepIps', (t) => t.networks.some((n) => (n.fixedIps?.length ?? 0) > 0 || n.keepIps === true)],
  ['securityGroups', 'networks[].securityGroups', (t) => t.networks.some((n) => n.securityGroups !== undefined)],
  ['floatingIps', 'networks[].floatingIpNetwork', (t) => t.networks.some((n) => n.floatingIpNetwork !== undefined)],
  ['availabilityZones', 'target.availabilityZone', (t) => t.availabilityZone !== undefined || t.volumeAvailabilityZone !== undefined],
  ['deleteVolumesOnTermination', 'target.deleteVolumesOnTermination', (t) => t.deleteVolumesOnTermination === true],
];

/** Options asked for that the target cannot carry out: refused, never dropped. */
export function unsupportedOptions(target: TargetSpec, support: TargetOptionSupport, targetName: string): PreflightReason[] {
  return OPTION_NAMES.filter(([cap, , asked]) => asked(target) && !support[cap]).map(([, option]) =>
    fail('option.unsupported', `target '${targetName}' cannot honour ${option}; leave it out or choose a target that can (an OpenStack cloud)`),
  );
}

export function judgeTarget(vm: InventoryVm, target: TargetSpec, flavors: Flavor[]): TargetJudgement {
  const reasons: PreflightReason[] = [];
  // keepIps: each NIC matched by the mapping gets the addresses the guest reports on it.
  const networks: NetworkMapping[] = [];
  for (const m of target.networks) {
    if (!m.keepIps) {
      networks.push(m);
      continue;
    }
    const matched = vm.nics.filter((n) => mappingMatches(m, n));
    for (const nic of matched) {
      const ips = keptIps(nic.ipAddresses);
      if (!ips.length) {
        reasons.push(
          fail(
            'network.ips_unknown',
            `VMware Tools report no IP address on NIC ${nic.macAddress} of ${vm.name} (the VM must be powered on with Tools running to keep its addresses); give fixedIps, or leave keepIps out for DHCP`,
          ),
        );
      }
      const { keepIps: _keep, sourceNetwork: _net, ...rest } = m;
      networks.push({ ...rest, sourceMac: nic.macAddress, ...(ips.length ? { fixedIps: ips } : {}) });
    }
    if (!matched.length) networks.push(m); // planNics reports the mapping that matches nothing
  }
  let nics: NicSpec[] | undefined;
  try {
    nics = planNics(vm.nics, networks);
  } catch (err) {
    if (!(err instanceof NetworkMappingError)) throw err;
    reasons.push(fail('network.unmapped', err.message));
  }
  const fit = checkFlavorFits(flavors, target.flavor, { name: vm.name, vcpus: vm.cpus, memoryMB: vm.memoryMB });
  if (!fit.ok) reasons.push(fail(target.flavor === undefined ? 'flavor.none_fits' : flavors.some((f) => f.name === target.flavor) ? 'flavor.too_small' : 'flavor.unknown', fit.reason));
  const firmware = planFirmware({ firmware: vm.firmware, secureBoot: vm.secureBoot }, target.machineType);
  if (!firmware.ok) reasons.push(fail('firmware.machine_type', firmware.reason));
  if (target.diskBus === 'ide' && (target.machineType ?? (vm.firmware === 'efi' ? 'pc-q35' : 'pc-i440fx')) === 'pc-q35') {
    reasons.push(fail('option.disk_bus', 'the q35 machine type has no IDE bus; choose sata, scsi or virtio'));
  }
  if (target.cloneDisks === false) {
    reasons.push(fail('option.unsupported', 'cloneDisks false cannot be honoured: vmigrate always converts and boots clones of the replicated volumes, so the replicas stay as copied (leave cloneDisks out or true)'));
  }
  for (const m of target.storageMap ?? []) {
    const used = m.diskKey !== undefined ? vm.disks.some((d) => d.key === m.diskKey) : vm.disks.some((d) => d.datastore === m.datastore);
    if (!used) reasons.push(warn('storage.unused', `the storage mapping for ${m.diskKey !== undefined ? `disk ${m.diskKey}` : `datastore '${m.datastore}'`} matches no disk of ${vm.name}`));
  }
  return { reasons, flavor: fit.ok ? fit.flavor : undefined, nics, networks };
}

/** What one VM, or all VMs of a request together, would take of the project's quotas. */
export interface QuotaNeed {
  instances: number;
  cores: number;
  ramMB: number;
  volumes: number;
  gigabytes: number;
  ports: number;
}

export function quotaNeedOf(vm: InventoryVm, flavor: Flavor | undefined, nics: number): QuotaNeed {
  return {
    instances: 1,
    cores: flavor?.vcpus ?? vm.cpus,
    ramMB: flavor?.ramMB ?? vm.memoryMB,
    // Each disk is copied into a volume and converted on a clone of it (Cinder counts both).
    volumes: vm.disks.length * 2,
    gigabytes: vm.disks.reduce((n, d) => n + 2 * Math.ceil(d.capacityBytes / 2 ** 30), 0),
    ports: nics,
  };
}

export function judgeQuota(need: QuotaNeed, free: QuotaHeadroom, volumeType: string, what: string): PreflightReason[] {
  const out: PreflightReason[] = [];
  const check = (name: string, needed: number, left: number | undefined, unit = '') => {
    if (left !== undefined && needed > left) {
      out.push(fail('quota.exceeded', `${what} needs ${needed}${unit} of the project's ${name} quota, which has ${left}${unit} left; raise the quota or free some`));
    }
  };
  check('instances', need.instances, free.instances);
  check('cores', need.cores, free.cores);
  check('ram', need.ramMB, free.ramMB, ' MB');
  check('volumes', need.volumes, free.volumes);
  check('gigabytes', need.gigabytes, free.gigabytes, ' GiB');
  check(`gigabytes_${volumeType}`, need.gigabytes, free.gigabytesByType?.[volumeType], ' GiB');
  check('port', need.ports, free.ports);
  return out;
}

export function judgeMacConflicts(conflicts: MacConflict[]): PreflightReason[] {
  return conflicts.map((c) =>
    fail('network.mac_conflict', `MAC ${c.mac} is already used on network '${c.network}' by port ${c.port}; delete that port, or set preserveMac false for this NIC`),
  );
}

export const quotaUnreadable = (why: string) => warn('quota.unknown', `the project's quotas could not be read (${why}); a quota refusal would fail the migration when it creates its resources`);
