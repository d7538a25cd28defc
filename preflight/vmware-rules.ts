/**
 * What a VMware VM must be for vmigrate to migrate it, judged on its inventory record alone. The rules follow the
 * VMware rules Forklift applies where they hold for a KVM/OpenStack target, adjusted to how vmigrate reads disks
 * (nbdkit over the datastore or VDDK, snapshots for warm syncs).
 */
import type { InventoryVm } from '../vsphere/vm-inventory';
import { fail, warn, type PreflightReason } from './verdict';

export interface VmwareRuleContext {
  kind: 'cold' | 'warm';
  /** How the source's disks are read: curl reads flat VMDK files of the datastore; vddk reads through VMware's library. */
  transport: 'curl' | 'vddk';
  /** Guest conversion mode (skip: copied as-is). */
  convert: 'auto' | 'force' | 'skip';
  /** Shut the guest down cleanly (warm: at cutover; cold: before the copy), which needs VMware Tools. */
  shutdownSource: boolean;
}

/** Guest ids virt-v2v cannot convert to run on KVM; others are inspected at Inspect. */
const UNCONVERTIBLE_GUEST = /^(darwin|freebsd|solaris|netware|os2|dos|win31|win95|win98|winMe|winNT|win2000|winXP|winNetStandard|winNetEnterprise|winNetDatacenter|winNetWeb|winNetBusiness|winNetStandard64|winLonghorn|vmkernel|eComStation|openServer|unixWare|asianux3|sco)/i;

export function vmwareRules(vm: InventoryVm, ctx: VmwareRuleContext): PreflightReason[] {
  const out: PreflightReason[] = [];
  if (vm.template) out.push(fail('vm.template', `${vm.name} is a template; deploy a VM from it and migrate that VM`));
  if (vm.faultToleranceState !== 'notConfigured' && vm.faultToleranceState !== '') {
    out.push(fail('vm.fault_tolerance', `${vm.name} is protected by vSphere Fault Tolerance (${vm.faultToleranceState}); turn fault tolerance off for the VM first`));
  }
  if (vm.disks.length === 0) out.push(fail('vm.no_disks', `${vm.name} has no virtual disks to migrate`));

  // Power state.
  if (vm.powerState === 'suspended') {
    out.push(fail('vm.suspended', `${vm.name} is suspended; its memory state would be lost: resume it and shut it down (or power it on for a warm migration)`));
  } else if (ctx.kind === 'cold' && vm.powerState === 'poweredOn') {
    out.push(
      warn(
        'vm.powered_on',
        ctx.shutdownSource
          ? `${vm.name} is powered on; it is shut down through VMware Tools before copying, and powered off hard if it does not stop in time`
          : `${vm.name} is powered on; a cold migration powers it off (hard) before copying: shut it down first, or ask for cold.shutdownSource, for a clean stop`,
      ),
    );
  } else if (ctx.kind === 'warm' && vm.powerState === 'poweredOff') {
    out.push(warn('vm.powered_off_warm', `${vm.name} is powered off, so it has no changes to sync; a cold migration copies it with less work`));
  }

  // Snapshots and change tracking.
  if (vm.snapshotCount > 0) {
    if (ctx.kind === 'warm' && !vm.changeTracking) {
      out.push(fail('snapshots.exist', `${vm.name} has ${vm.snapshotCount} snapshot(s), and Changed Block Tracking cannot be turned on while a VM has snapshots; delete or consolidate them first`));
    } else if (ctx.transport === 'curl') {
      out.push(fail('snapshots.exist', `${vm.name} has ${vm.snapshotCount} snapshot(s); the curl transport reads base disk files only, so the newest data in the snapshot deltas would be missed: delete or consolidate the snapshots, or use the vddk transport`));
    } else {
      out.push(warn('snapshots.exist', `${vm.name} has ${vm.snapshotCount} snapshot(s); the current state is migrated, the snapshots themselves are not`));
    }
  }
  if (ctx.kind === 'warm' && !vm.changeTracking && vm.snapshotCount === 0) {
    out.push(warn('cbt.disabled', `Changed Block Tracking is off on ${vm.name}; the migration turns it on (a reconfiguration of the VM) before the first snapshot`));
  }

  // Disks.
  for (const d of vm.disks) {
    const which = `${d.label || `disk ${d.key}`} (${d.fileName || 'no file'})`;
    if (d.backing === 'rdm') {
      out.push(fail('disk.rdm', `${which} is a raw device mapping (${d.rdmMode ?? 'unknown mode'}); a LUN is not a virtual disk vmigrate can read: convert it to a VMDK (Storage vMotion) or present the LUN to the target directly`));
    } else if (d.backing !== 'flat') {
      out.push(fail('disk.backing', `${which} has a ${d.backing} backing; only VMDK files (flat, thin or thick) are migrated`));
    }
    // A LUN's mode and sharing are the mapping's; the RDM itself is the reason.
    if (d.backing === 'rdm') continue;
    if (d.sharing === 'sharingMultiWriter') {
      out.push(fail('disk.shared', `${which} is shared with other VMs (multi-writer); clustered disks cannot be migrated with one VM: turn multi-writer off or migrate the cluster's data another way`));
    }
    if (d.mode === 'independent_persistent' || d.mode === 'independent_nonpersistent') {
      if (ctx.kind === 'warm') {
        out.push(fail('disk.independent', `${which} is independent (${d.mode}); snapshots leave independent disks out, so a warm migration cannot sync it: make it dependent, or migrate cold`));
      } else {
        out.push(warn('disk.independent', `${which} is independent (${d.mode}); it is copied as it is at power-off`));
      }
    }
    if (d.mode === 'nonpersistent' || d.mode === 'independent_nonpersistent' || d.mode === 'undoable' || d.mode === 'append') {
      out.push(warn('disk.mode', `${which} is in ${d.mode} mode; changes made since power-on are discarded at power-off, so the copy has the disk as it was before them`));
    }
  }

  // Devices that stay behind.
  for (const dev of vm.specialDevices) {
    switch (dev.kind) {
      case 'pciPassthrough':
        out.push(warn('device.passthrough', `${dev.label} is a PCI passthrough device; it stays with the source host: give the instance a flavor with a PCI alias if the workload needs the device`));
        break;
      case 'sriovNic':
        out.push(warn('device.sriov', `${dev.label} is an SR-IOV NIC; the target gets a regular (VirtIO) port for it: use a direct (SR-IOV) Neutron port afterwards if the workload needs it`));
        break;
      case 'tpm':
        out.push(warn('device.tpm', `${vm.name} has a virtual TPM; its keys cannot be migrated: suspend BitLocker or other TPM-sealed encryption before migrating, or the guest asks for its recovery key`));
        break;
      case 'usb':
        out.push(warn('device.usb', `${dev.label} is a USB device passed through from the host; it stays behind`));
        break;
    }
  }

  // VMware Tools and the guest.
  const toolsRunning = vm.tools.runningStatus === 'guestToolsRunning';
  if (ctx.shutdownSource && vm.powerState === 'poweredOn' && !toolsRunning) {
    out.push(warn('tools.not_running', `VMware Tools are not running on ${vm.name}; ${ctx.kind === 'warm' ? 'at cutover ' : ''}the guest cannot be shut down cleanly and is powered off hard`));
  } else if (vm.tools.versionStatus === 'guestToolsNotInstalled' && vm.powerState === 'poweredOn') {
    out.push(warn('tools.not_installed', `VMware Tools are not installed on ${vm.name}; vSphere cannot report the guest's IP addresses or shut it down cleanly`));
  } else if (vm.tools.versionStatus === 'guestToolsSupportedOld' || vm.tools.versionStatus === 'guestToolsTooOld' || vm.tools.versionStatus === 'guestToolsNeedUpgrade') {
    out.push(warn('tools.old', `VMware Tools on ${vm.name} are out of date (${vm.tools.versionStatus}); they are removed by the conversion anyway, but a clean shutdown may not work`));
  }
  if (ctx.convert !== 'skip' && UNCONVERTIBLE_GUEST.test(vm.guest.id)) {
    out.push(
      (ctx.convert === 'force' ? fail : warn)(
        'guest.unsupported',
        `${vm.name}'s guest (${vm.guest.fullName ?? vm.guest.id}) is not one virt-v2v converts to run on KVM; ${ctx.convert === 'force' ? 'a forced conversion would fail: use guest.convert auto or skip' : 'it is copied as-is and may not boot without VirtIO drivers'}`,
      ),
    );
  }
  return out;
}
