import type { GuestInspection } from '../../activities';
import { planFirmware } from '../../targets/firmware-plan';
import { guestPreflight } from '../../workflows/guest-preflight';

const linux = (over: Partial<GuestInspection>): GuestInspection => ({
  osFamily: 'linux',
  distro: 'debian',
  firmware: 'bios',
  partitionTable: 'mbr',
  disks: [{ index: 0, partitionTable: 'mbr' }],
  filesystems: [],
  encrypted: false,
  convertible: true,
  warnings: [],
  applianceMs: 1,
  ...over,
});

describe('what the Inspect stage refuses before copying', () => {
  it("a boot disk made for the other firmware than vSphere's, with what to change", () => {
    const uefiDisk = linux({ firmware: 'efi', partitionTable: 'gpt' });
    expect(guestPreflight({ vmName: 'web1', source: { firmware: 'bios' }, guest: uefiDisk, convert: 'auto' })).toEqual({
      type: 'FirmwareMismatchError',
      message:
        'vSphere starts VM web1 with BIOS firmware, but its boot disk has an EFI system partition (gpt) and no BIOS boot partition, so the guest boots with UEFI; ' +
        "the target instance would get BIOS and not boot. Correct the VM's firmware setting in vSphere (VM Options > Boot Options) to match the guest, or migrate with guest.convert 'skip' to copy the disks as they are",
    });
    expect(guestPreflight({ vmName: 'web1', source: { firmware: 'efi', secureBoot: true }, guest: linux({}), convert: 'force' })?.message).toMatch(
      /^vSphere starts VM web1 with EFI firmware, but its boot disk has no EFI system partition \(mbr\), so the guest boots with BIOS; the target instance would get UEFI/,
    );
    // Agreement, disks without an OS (nothing to go by), and skip pass.
    expect(guestPreflight({ vmName: 'web1', source: { firmware: 'efi' }, guest: linux({ firmware: 'efi', partitionTable: 'gpt' }), convert: 'auto' })).toBeUndefined();
    expect(guestPreflight({ vmName: 'd', source: { firmware: 'efi' }, guest: linux({ osFamily: 'unknown', convertible: false }), convert: 'auto' })).toBeUndefined();
    expect(guestPreflight({ vmName: 'web1', source: { firmware: 'bios' }, guest: uefiDisk, convert: 'skip' })).toBeUndefined();
  });

  it('a forced conversion of an encrypted guest without a key; auto copies it as-is instead', () => {
    const encrypted = linux({ osFamily: 'unknown', encrypted: true, convertible: false, warnings: ['encrypted volume(s) /dev/sda2 (crypto_LUKS): their contents cannot be inspected or converted without a key; they are copied as-is'] });
    expect(guestPreflight({ vmName: 'db', source: { firmware: 'bios' }, guest: encrypted, convert: 'force' })).toEqual({
      type: 'EncryptedGuestError',
      message: expect.stringMatching(/^the guest cannot be converted: encrypted volume\(s\) \/dev\/sda2 \(crypto_LUKS\).*No key was given, so virt-v2v cannot open it; migrate with guest.convert 'auto' or 'skip'/),
    });
    expect(guestPreflight({ vmName: 'db', source: { firmware: 'bios' }, guest: encrypted, convert: 'auto' })).toBeUndefined();
  });

  it('firmware plan: Secure Boot gets q35 by default and refuses i440fx; BIOS keeps i440fx', () => {
    expect(planFirmware({ firmware: 'efi', secureBoot: true }, undefined)).toEqual({ ok: true, firmware: 'efi', secureBoot: true, machineType: 'pc-q35' });
    expect(planFirmware({ firmware: 'efi', secureBoot: true }, 'pc-i440fx')).toMatchObject({ ok: false, reason: expect.stringMatching(/needs the q35 machine type/) });
    expect(planFirmware({ firmware: 'bios', secureBoot: true }, undefined)).toEqual({ ok: true, firmware: 'bios', secureBoot: false, machineType: 'pc-i440fx' });
  });
});
