/** The VM description vmigrate migrates from, and its mapping from vim25 properties. */
import { XNode, child, children, textAt } from './soap-reply';
import { MoRef, boolOf, intOf, moRefOf } from './vim-types';

export type PowerState = 'poweredOn' | 'poweredOff' | 'suspended';

export interface VmDisk {
  key: number;
  label: string;
  capacityBytes: number;
  /** Datastore name, from the backing file name. */
  datastore: string;
  /** Descriptor, e.g. "[LocalDS_0] vm/vm.vmdk". */
  fileName: string;
  /** Raw extent, e.g. "[LocalDS_0] vm/vm-flat.vmdk" (what /folder serves as raw bytes). */
  flatFileName: string;
  thinProvisioned?: boolean;
  controllerKey: number;
  unitNumber?: number;
  changeId?: string;
  /** xsi type of the backing, e.g. VirtualDiskFlatVer2BackingInfo. */
  backingType?: string;
}

export interface VmNic {
  key: number;
  label: string;
  macAddress: string;
  /** Network (port group) name. */
  network: string;
  /** Device type, e.g. VirtualVmxnet3, VirtualE1000. */
  adapterType: string;
}

export interface VmHardware {
  moref: MoRef;
  name: string;
  instanceUuid?: string;
  guestId: string;
  guestFamily?: string;
  guestFullName?: string;
  firmware: 'bios' | 'efi';
  /** EFI firmware with Secure Boot on (config.bootOptions.efiSecureBootEnabled). */
  secureBoot: boolean;
  numCPU: number;
  memoryMB: number;
  powerState: PowerState;
  /** Name of the VM's datacenter. */
  datacenter: string;
  /** Inventory path of the datacenter (differs from `datacenter` when it sits in folders); use as dcPath. */
  datacenterPath: string;
  /** The ESXi host the VM runs on (its moref value, e.g. "host-21"); its disk reads go through it. */
  host?: string;
  changeTrackingEnabled: boolean;
  disks: VmDisk[];
  nics: VmNic[];
}

/** Property paths getVmHardware retrieves. */
export const VM_HARDWARE_PATHS = [
  'name',
  'config.instanceUuid',
  'config.guestId',
  'config.guestFullName',
  'config.firmware',
  'config.bootOptions.efiSecureBootEnabled',
  'config.changeTrackingEnabled',
  'config.hardware.numCPU',
  'config.hardware.memoryMB',
  'config.hardware.device',
  'guest.guestFamily',
  'runtime.powerState',
  'runtime.host',
  'parent',
  'parentVApp',
];

const NIC_TYPES = new Set([
  'VirtualE1000', 'VirtualE1000e', 'VirtualPCNet32', 'VirtualVmxnet', 'VirtualVmxnet2', 'VirtualVmxnet3',
  'VirtualVmxnet3Vrdma', 'VirtualSriovEthernetCard', 'VirtualEthernetCard',
]);

export function parsePowerState(value: string | undefined): PowerState {
  if (value === 'poweredOn' || value === 'poweredOff' || value === 'suspended') return value;
  throw new Error(`unexpected VM power state ${JSON.stringify(value)}`);
}

/** "[ds] dir/file.vmdk" → { datastore: "ds", path: "dir/file.vmdk" }. */
export function parseDatastorePath(p: string): { datastore: string; path: string } {
  const m = /^\[([^\]]*)\]\s*(.*)$/.exec(p);
  if (!m) throw new Error(`not a datastore path: ${JSON.stringify(p)}`);
  return { datastore: m[1], path: m[2] };
}

/** The raw extent of a flat VMDK descriptor: x.vmdk → x-flat.vmdk. */
export function flatFileNameOf(fileName: string): string {
  return fileName.replace(/(-flat)?\.vmdk$/i, '-flat.vmdk');
}

function num(node: XNode | undefined, what: string): number {
  const n = intOf(node);
  if (n === undefined) throw new Error(`malformed vim25 reply: ${what} is missing or not an integer`);
  return n;
}

function mapDisk(dev: XNode): VmDisk {
  const backing = child(dev, 'backing');
  const fileName = textAt(backing, 'fileName') ?? '';
  const capacityBytes = intOf(child(dev, 'capacityInBytes')) ?? num(child(dev, 'capacityInKB'), 'disk capacityInKB') * 1024;
  return {
    key: num(child(dev, 'key'), 'device key'),
    label: textAt(dev, 'deviceInfo.label') ?? '',
    capacityBytes,
    datastore: fileName ? parseDatastorePath(fileName).datastore : '',
    fileName,
    flatFileName: fileName ? flatFileNameOf(fileName) : '',
    thinProvisioned: boolOf(child(backing, 'thinProvisioned')),
    controllerKey: num(child(dev, 'controllerKey'), 'disk controllerKey'),
    unitNumber: intOf(child(dev, 'unitNumber')),
    changeId: textAt(backing, 'changeId') || undefined,
    backingType: backing?.xsiType,
  };
}

/** A NIC's network: standard port groups carry the name; others need a lookup (see networkRefOf). */
function mapNic(dev: XNode, networkNames: ReadonlyMap<string, string>): VmNic {
  const backing = child(dev, 'backing');
  const ref = networkRefOf(dev);
  const network =
    (ref && networkNames.get(`${ref.type}:${ref.value}`)) ?? textAt(backing, 'deviceName') ?? textAt(backing, 'opaqueNetworkId') ?? '';
  return {
    key: num(child(dev, 'key'), 'device key'),
    label: textAt(dev, 'deviceInfo.label') ?? '',
    macAddress: textAt(dev, 'macAddress') ?? '',
    network,
    adapterType: dev.xsiType ?? 'VirtualEthernetCard',
  };
}

export function isNic(dev: XNode): boolean {
  return (dev.xsiType !== undefined && NIC_TYPES.has(dev.xsiType)) || child(dev, 'macAddress') !== undefined;
}

/** Network object a NIC is attached to, when its name must be looked up (distributed port groups). */
export function networkRefOf(dev: XNode): MoRef | undefined {
  const backing = child(dev, 'backing');
  const pgKey = textAt(backing, 'port.portgroupKey');
  if (pgKey) return { type: 'DistributedVirtualPortgroup', value: pgKey };
  return moRefOf(child(backing, 'network'));
}

/** Device list of the config.hardware.device property (ArrayOfVirtualDevice). */
export function devicesOf(props: ReadonlyMap<string, XNode>): XNode[] {
  return children(props.get('config.hardware.device'), 'VirtualDevice');
}

/** The virtual disks of a config.hardware.device property, of a VM or of a VirtualMachineSnapshot. */
export function disksOf(props: ReadonlyMap<string, XNode>): VmDisk[] {
  return devicesOf(props)
    .filter((d) => d.xsiType === 'VirtualDisk')
    .map(mapDisk);
}

/**
 * Maps retrieved VM properties (VM_HARDWARE_PATHS) to VmHardware. The
 * datacenter and the names of distributed port groups come from separate
 * lookups done by the client.
 */
export function vmHardwareFrom(
  moref: MoRef,
  props: ReadonlyMap<string, XNode>,
  dc: { name: string; path: string },
  networkNames: ReadonlyMap<string, string> = new Map(),
): VmHardware {
  const text = (p: string) => props.get(p)?.text;
  if (!props.has('config.hardware.device')) {
    throw new Error(`VM ${moref.value} has no readable configuration (inaccessible or being created?)`);
  }
  const devices = devicesOf(props);
  const firmware = text('config.firmware') === 'efi' ? 'efi' : 'bios';
  return {
    moref,
    name: text('name') ?? '',
    instanceUuid: text('config.instanceUuid') || undefined,
    guestId: text('config.guestId') ?? '',
    guestFamily: text('guest.guestFamily') || undefined,
    guestFullName: text('config.guestFullName') || undefined,
    firmware,
    // Secure Boot exists only with EFI firmware; vSphere keeps the flag when firmware is switched back to BIOS.
    secureBoot: firmware === 'efi' && boolOf(props.get('config.bootOptions.efiSecureBootEnabled')) === true,
    numCPU: num(props.get('config.hardware.numCPU'), 'config.hardware.numCPU'),
    memoryMB: num(props.get('config.hardware.memoryMB'), 'config.hardware.memoryMB'),
    powerState: parsePowerState(text('runtime.powerState')),
    datacenter: dc.name,
    datacenterPath: dc.path,
    host: moRefOf(props.get('runtime.host'))?.value,
    changeTrackingEnabled: boolOf(props.get('config.changeTrackingEnabled')) ?? false,
    disks: devices.filter((d) => d.xsiType === 'VirtualDisk').map(mapDisk),
    nics: devices.filter(isNic).map((d) => mapNic(d, networkNames)),
  };
}

