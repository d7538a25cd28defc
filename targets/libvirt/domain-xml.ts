/**
 * libvirt domain XML for a migrated instance: what the libvirt target defines on its KVM host, and what the local
 * stand-in keeps beside its record. Everything caller-controlled is escaped; machine types map to QEMU's unversioned
 * aliases ("pc", "q35").
 */
import type { Flavor, InstanceSpec } from '../target-provider';

/** Where a NIC plugs in on the host: a Linux bridge, or a libvirt network. */
export type NicSource = { bridge: string } | { network: string };

export interface DomainOptions {
  /** kvm (default), or qemu for hosts without hardware virtualization (TCG). */
  virtType?: 'kvm' | 'qemu';
  /** Per NIC of the spec, in order; absent: a libvirt network named as the NIC's target network. */
  nicSources?: readonly NicSource[];
  /** The serial console written to this file on the host too (besides its pty), for a boot check to read. */
  consoleLog?: string;
  /** More elements inside vmigrate's metadata element (already XML, escaped by the caller). */
  metadataXml?: readonly string[];
}

export interface DomainDisk {
  /** Absolute path of the volume's file. */
  file: string;
  /** Default raw. */
  format?: 'raw' | 'qcow2';
  /** A qcow2 clone's raw base file, spelled out so libvirt does not have to probe the backing chain. */
  backingFile?: string;
}

const MACHINE_ALIAS: Record<InstanceSpec['machineType'], string> = { 'pc-i440fx': 'pc', 'pc-q35': 'q35' };
const DEV_PREFIX: Record<InstanceSpec['diskBus'], string> = { virtio: 'vd', scsi: 'sd', sata: 'sd', ide: 'hd' };

export function renderDomainXml(id: string, spec: InstanceSpec, flavor: Flavor, disks: readonly DomainDisk[], opts: DomainOptions = {}): string {
  const virtType = opts.virtType ?? 'kvm';
  if (opts.nicSources && opts.nicSources.length !== spec.nics.length) throw new Error(`instance ${spec.name}: ${spec.nics.length} NICs but ${opts.nicSources.length} NIC sources`);
  // Emulated buses mean the guest may lack VirtIO drivers: give it a NIC it has drivers for too.
  const nicModel = spec.diskBus === 'virtio' || spec.diskBus === 'scsi' ? 'virtio' : 'e1000';
  // libvirt's firmware auto-selection picks OVMF from QEMU's descriptors; Secure Boot asks for a build with the
  // Microsoft keys enrolled (what shim is signed with), which needs SMM and so q35.
  const os = spec.firmware === 'efi' ? `<os firmware='efi'>` : '<os>';
  const firmwareFeatures =
    spec.firmware === 'efi' && spec.secureBoot ? [`    <firmware>`, `      <feature enabled='yes' name='secure-boot'/>`, `      <feature enabled='yes' name='enrolled-keys'/>`, `    </firmware>`] : [];
  const lines = [
    `<domain type='${virtType}'>`,
    `  <name>${esc(`${spec.project}-${spec.name}`)}</name>`,
    `  <uuid>${esc(id)}</uuid>`,
    `  <title>${esc(spec.name)}</title>`,
    `  <metadata>`,
    `    <vmigrate:instance xmlns:vmigrate='https://vmigrate.dev/xmlns/instance/1'>`,
    `      <vmigrate:project>${esc(spec.project)}</vmigrate:project>`,
    `      <vmigrate:flavor>${esc(flavor.name)}</vmigrate:flavor>`,
    ...(spec.availabilityZone ? [`      <vmigrate:availabilityZone>${esc(spec.availabilityZone)}</vmigrate:availabilityZone>`] : []),
    ...Object.entries(spec.metadata ?? {}).map(([k, v]) => `      <vmigrate:meta key='${esc(k)}'>${esc(v)}</vmigrate:meta>`),
    ...(opts.metadataXml ?? []).map((x) => `      ${x}`),
    `    </vmigrate:instance>`,
    `  </metadata>`,
    `  <memory unit='MiB'>${flavor.ramMB}</memory>`,
    `  <currentMemory unit='MiB'>${flavor.ramMB}</currentMemory>`,
    `  <vcpu placement='static'>${flavor.vcpus}</vcpu>`,
    `  ${os}`,
    ...firmwareFeatures,
    `    <type arch='x86_64' machine='${MACHINE_ALIAS[spec.machineType]}'>hvm</type>`,
    `  </os>`,
    `  <features><acpi/><apic/>${spec.firmware === 'efi' && spec.secureBoot ? `<smm state='on'/>` : ''}</features>`,
    // The host's CPU model where there is hardware virtualization; TCG emulates its default model.
    ...(virtType === 'kvm' ? [`  <cpu mode='host-model'/>`] : []),
    `  <clock offset='utc'/>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>restart</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    ...(spec.diskBus === 'scsi' ? [`    <controller type='scsi' index='0' model='virtio-scsi'/>`] : []),
    ...disks.flatMap((disk, i) => [
      `    <disk type='file' device='disk'>`,
      `      <driver name='qemu' type='${disk.format ?? 'raw'}' cache='none' io='native' discard='unmap'/>`,
      `      <source file='${esc(disk.file)}'/>`,
      ...(disk.backingFile
        ? [`      <backingStore type='file'>`, `        <format type='raw'/>`, `        <source file='${esc(disk.backingFile)}'/>`, `      </backingStore>`]
        : []),
      `      <target dev='${DEV_PREFIX[spec.diskBus]}${driveLetters(i)}' bus='${spec.diskBus}'/>`,
      ...(i === 0 ? [`      <boot order='1'/>`] : []),
      `    </disk>`,
    ]),
    ...spec.nics.flatMap((nic, i) => {
      const source = opts.nicSources?.[i] ?? { network: nic.network };
      return [
      'bridge' in source ? `    <interface type='bridge'>` : `    <interface type='network'>`,
      ...(nic.preserveMac ? [`      <mac address='${esc(nic.sourceMac.toLowerCase())}'/>`] : []),
      'bridge' in source ? `      <source bridge='${esc(source.bridge)}'/>` : `      <source network='${esc(source.network)}'/>`,
      `      <model type='${nicModel}'/>`,
      `    </interface>`,
      ];
    }),
    ...(opts.consoleLog ? [`    <serial type='pty'>`, `      <log file='${esc(opts.consoleLog)}' append='on'/>`, `    </serial>`] : [`    <serial type='pty'/>`]),
    `    <console type='pty'/>`,
    `  </devices>`,
    `</domain>`,
  ];
  return lines.join('\n') + '\n';
}

/** 0 → "a", 25 → "z", 26 → "aa" (the kernel's sd/vd naming). */
export function driveLetters(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) name = String.fromCharCode(97 + ((n - 1) % 26)) + name;
  return name;
}

export function esc(text: string): string {
  // Control characters cannot appear in XML 1.0 even as references; they only come from free-form metadata.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '\ufffd').replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The text of an element or attribute as written by esc() or by libvirt. */
export function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|apos|quot|#\d+);/g, (_m, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'apos' ? "'" : e === 'quot' ? '"' : String.fromCharCode(Number(e.slice(1))),
  );
}
