/**
 * What the Inspect stage's findings rule out before any disk is copied (pure, so workflows can use it):
 *  - firmware: vSphere starts the VM with BIOS or EFI, and the target gets the same; a boot disk made for the other
 *    one (an EFI system partition without a BIOS boot partition means UEFI, none means BIOS) would not boot there;
 *  - a conversion forced on a guest that inspection could not open (an encrypted root without a key): it would fail
 *    only after the whole copy.
 * Terabytes are not copied for an instance that cannot work; each reason says what to change.
 */
import type { GuestInspection } from '../activities';
import type { NonRetryableFailure } from '../shared/failure-types';

export interface GuestPreflightFailure {
  type: NonRetryableFailure;
  message: string;
}

export function guestPreflight(args: {
  vmName: string;
  source: { firmware: 'bios' | 'efi'; secureBoot?: boolean };
  guest?: GuestInspection;
  convert: 'auto' | 'force' | 'skip';
}): GuestPreflightFailure | undefined {
  const { guest, source } = args;
  if (!guest || args.convert === 'skip') return undefined;
  // Only a guest inspection found is evidence of how the disks boot (blank or data-only disks say nothing).
  const hasOs = guest.osFamily === 'linux' || guest.osFamily === 'windows';
  if (hasOs && guest.firmware !== source.firmware) {
    const disks =
      guest.firmware === 'efi'
        ? `its boot disk has an EFI system partition (${guest.partitionTable}) and no BIOS boot partition, so the guest boots with UEFI`
        : `its boot disk has no EFI system partition (${guest.partitionTable}), so the guest boots with BIOS`;
    return {
      type: 'FirmwareMismatchError',
      message:
        `vSphere starts VM ${args.vmName} with ${source.firmware === 'efi' ? 'EFI' : 'BIOS'} firmware, but ${disks}; ` +
        `the target instance would get ${source.firmware === 'efi' ? 'UEFI' : 'BIOS'} and not boot. Correct the VM's firmware setting in vSphere ` +
        `(VM Options > Boot Options) to match the guest, or migrate with guest.convert 'skip' to copy the disks as they are`,
    };
  }
  if (args.convert === 'force' && guest.encrypted && !guest.convertible) {
    return {
      type: 'EncryptedGuestError',
      message:
        `the guest cannot be converted: ${guest.warnings.join('; ') || 'its root file system is encrypted'}. ` +
        `No key was given, so virt-v2v cannot open it; migrate with guest.convert 'auto' or 'skip' to copy the disks as they are ` +
        `(the instance then needs VirtIO drivers installed in the guest before it can boot on VirtIO)`,
    };
  }
  return undefined;
}
