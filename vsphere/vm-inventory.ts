/**
 * A VM as the inventory lists it: everything an operator picks a VM by and everything preflight judges it on, read
 * in one PropertyCollector pass over a ContainerView (no per-VM round trips), small enough to page through an API.
 */
import { child, children, textAt, type XNode } from './soap-reply';
import { boolOf, intOf, moRefOf, type MoRef } from './vim-types';
import { devicesOf, isNic, networkRefOf, parseDatastorePath, parsePowerState, VM_HARDWARE_PATHS, type PowerState } from './vm-hardware';

export interface InventoryDisk {
  key: number;
  label: string;
  capacityBytes: number;
  datastore: string;
  fileName: string;
  /** vSphere disk mode: persistent, independent_persistent, independent_nonpersistent, nonpersistent, … */
  mode: string;
  /** sharingNone or sharingMultiWriter. */
  sharing: string;
  /** flat (a VMDK), rdm (a LUN mapped into the VM), or the backing's vim25 type for anything else. */
  backing: 'flat' | 'rdm' | string;
  /** RDMs: physicalMode or virtualMode. */
  rdmMode?: string;
  thinProvisioned?: boolean;
  controller: { key: number; type: string; busNumber?: number; unitNumber?: number };
}

export interface InventoryNic {
  key: number;
  label: string;
  macAddress: string;
  network: string;
  adapterType: string;
  /** What VMware Tools reports on this NIC (empty when Tools do not run). */
  ipAddresses: string[];
}

/** Devices that tie a VM to its host or that a KVM target cannot reproduce. */
export interface InventorySpecialDevice {
  kind: 'pciPassthrough' | 'sriovNic' | 'tpm' | 'usb';
  key: number;
  label: string;
}

export interface InventoryVm {
  moref: string;
  name: string;
  template: boolean;
  datacenter: string;
  /** Path of the VM's folder under its datacenter's VM folder ("" at the top; "prod/web"). */
  folder: string;
  host?: { moref: string; name: string };
  powerState: PowerState;
  guest: { id: string; fullName?: string; family?: string; hostName?: string; ipAddresses: string[] };
  firmware: 'bios' | 'efi';
  secureBoot: boolean;
  cpus: number;
  memoryMB: number;
  changeTracking: boolean;
  snapshotCount: number;
  tools: { runningStatus: string; versionStatus: string };
  /** notConfigured unless fault tolerance protects the VM. */
  faultToleranceState: string;
  disks: InventoryDisk[];
  nics: InventoryNic[];
  specialDevices: InventorySpecialDevice[];
}

/** VirtualMachine paths one inventory pass reads: those of a migration's hardware read, and what preflight judges. */
export const INVENTORY_VM_PATHS = [
  ...VM_HARDWARE_PATHS.filter((p) => p !== 'parentVApp' && p !== 'config.instanceUuid'),
  'config.template',
  'guest.guestFullName',
  'guest.hostName',
  'guest.ipAddress',
  'guest.net',
  'guest.toolsRunningStatus',
  'guest.toolsVersionStatus2',
  'runtime.faultToleranceState',
  'snapshot',
];

/** Names and parents of the inventory's containers, to give each VM its folder path, datacenter and host name. */
export interface InventoryLookups {
  /** "Type:value" → name and parent, for Folder, Datacenter, HostSystem, networks and vApps. */
  objects: ReadonlyMap<string, { name: string; parent?: MoRef; type: string }>;
}

const key = (ref: MoRef) => `${ref.type}:${ref.value}`;

/** Folder path under the datacenter's VM folder, and the datacenter, by walking parents (vApps count as folders). */
export function placementOf(parent: MoRef | undefined, lookups: InventoryLookups): { datacenter: string; folder: string } {
  const names: string[] = [];
  let at = parent;
  for (let hops = 0; at && hops < 64; hops++) {
    const o = lookups.objects.get(key(at));
    if (!o) break;
    if (o.type === 'Datacenter') {
      // The top of the path is the datacenter's own "vm" folder.
      return { datacenter: o.name, folder: names.slice(0, -1).reverse().join('/') };
    }
    names.push(o.name);
    at = o.parent;
  }
  return { datacenter: '', folder: names.reverse().join('/') };
}

function countSnapshots(trees: XNode[]): number {
  return trees.reduce((n, t) => n + 1 + countSnapshots(children(t, 'childSnapshotList')), 0);
}

function specialDeviceKind(dev: XNode): InventorySpecialDevice['kind'] | undefined {
  switch (dev.xsiType) {
    case 'VirtualPCIPassthrough':
      return 'pciPassthrough';
    case 'VirtualSriovEthernetCard':
      return 'sriovNic';
    case 'VirtualTPM':
      return 'tpm';
    case 'VirtualUSB':
      return 'usb';
  }
  return undefined;
}

export function inventoryVmFrom(obj: MoRef, props: ReadonlyMap<string, XNode>, lookups: InventoryLookups): InventoryVm {
  const text = (p: string) => props.get(p)?.text || undefined;
  const devices = devicesOf(props);
  const byKey = new Map(devices.map((d) => [intOf(child(d, 'key')), d]));
  const guestNet = children(props.get('guest.net'), 'GuestNicInfo');
  const ipsOf = (mac: string) =>
    guestNet.filter((g) => textAt(g, 'macAddress')?.toLowerCase() === mac.toLowerCase()).flatMap((g) => children(g, 'ipAddress').map((i) => i.text));
  const firmware = text('config.firmware') === 'efi' ? 'efi' : 'bios';
  const hostRef = moRefOf(props.get('runtime.host'));
  const { datacenter, folder } = placementOf(moRefOf(props.get('parent')), lookups);

  const disks: InventoryDisk[] = devices
    .filter((d) => d.xsiType === 'VirtualDisk')
    .map((d) => {
      const backing = child(d, 'backing');
      const fileName = textAt(backing, 'fileName') ?? '';
      const controllerKey = intOf(child(d, 'controllerKey')) ?? -1;
      const controller = byKey.get(controllerKey);
      const isRdm = backing?.xsiType === 'VirtualDiskRawDiskMappingVer1BackingInfo';
      return {
        key: intOf(child(d, 'key')) ?? -1,
        label: textAt(d, 'deviceInfo.label') ?? '',
        capacityBytes: intOf(child(d, 'capacityInBytes')) ?? (intOf(child(d, 'capacityInKB')) ?? 0) * 1024,
        datastore: fileName ? parseDatastorePath(fileName).datastore : '',
        fileName,
        mode: textAt(backing, 'diskMode') ?? 'persistent',
        sharing: textAt(backing, 'sharing') ?? 'sharingNone',
        backing: isRdm ? 'rdm' : backing?.xsiType === 'VirtualDiskFlatVer2BackingInfo' || !backing?.xsiType ? 'flat' : backing.xsiType,
        rdmMode: isRdm ? textAt(backing, 'compatibilityMode') : undefined,
        thinProvisioned: boolOf(child(backing, 'thinProvisioned')),
        controller: {
          key: controllerKey,
          type: controller?.xsiType ?? 'unknown',
          busNumber: intOf(child(controller, 'busNumber')),
          unitNumber: intOf(child(d, 'unitNumber')),
        },
      };
    });

  const nics: InventoryNic[] = devices.filter(isNic).map((d) => {
    const ref = networkRefOf(d);
    const mac = textAt(d, 'macAddress') ?? '';
    return {
      key: intOf(child(d, 'key')) ?? -1,
      label: textAt(d, 'deviceInfo.label') ?? '',
      macAddress: mac,
      network: (ref && lookups.objects.get(key(ref))?.name) ?? textAt(child(d, 'backing'), 'deviceName') ?? '',
      adapterType: d.xsiType ?? 'VirtualEthernetCard',
      ipAddresses: mac ? ipsOf(mac) : [],
    };
  });

  const specialDevices: InventorySpecialDevice[] = devices.flatMap((d) => {
    const kind = specialDeviceKind(d);
    return kind ? [{ kind, key: intOf(child(d, 'key')) ?? -1, label: textAt(d, 'deviceInfo.label') ?? d.xsiType ?? kind }] : [];
  });

  return {
    moref: obj.value,
    name: text('name') ?? '',
    template: boolOf(props.get('config.template')) ?? false,
    datacenter,
    folder,
    host: hostRef ? { moref: hostRef.value, name: lookups.objects.get(key(hostRef))?.name ?? hostRef.value } : undefined,
    powerState: parsePowerState(text('runtime.powerState')),
    guest: {
      id: text('config.guestId') ?? '',
      fullName: text('guest.guestFullName') ?? text('config.guestFullName'),
      family: text('guest.guestFamily'),
      hostName: text('guest.hostName'),
      ipAddresses: [...new Set([...(text('guest.ipAddress') ? [text('guest.ipAddress')!] : []), ...nics.flatMap((n) => n.ipAddresses)])],
    },
    firmware,
    secureBoot: firmware === 'efi' && boolOf(props.get('config.bootOptions.efiSecureBootEnabled')) === true,
    cpus: intOf(props.get('config.hardware.numCPU')) ?? 0,
    memoryMB: intOf(props.get('config.hardware.memoryMB')) ?? 0,
    changeTracking: boolOf(props.get('config.changeTrackingEnabled')) ?? false,
    snapshotCount: countSnapshots(children(props.get('snapshot'), 'rootSnapshotList')),
    tools: { runningStatus: text('guest.toolsRunningStatus') ?? 'guestToolsNotRunning', versionStatus: text('guest.toolsVersionStatus2') ?? 'guestToolsNotInstalled' },
    faultToleranceState: text('runtime.faultToleranceState') ?? 'notConfigured',
    disks,
    nics,
    specialDevices,
  };
}
