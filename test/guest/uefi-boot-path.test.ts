import { planUefiBootPath } from '../../guest/uefi-boot-path';

/** ESP listings as guestfish's `find /EFI` gives them for real installs (leading slash stripped). */
const DEBIAN_SHIM = ['debian', 'debian/BOOTX64.CSV', 'debian/fbx64.efi', 'debian/grub.cfg', 'debian/grubx64.efi', 'debian/mmx64.efi', 'debian/shimx64.efi'];

describe('the UEFI removable-media boot path: what a converted guest needs copied', () => {
  it('leaves a guest alone that has EFI/BOOT/BOOTX64.EFI, whatever its case', () => {
    expect(planUefiBootPath([...DEBIAN_SHIM, 'BOOT', 'BOOT/BOOTX64.EFI'])).toEqual({ present: true, copies: [] });
    expect(planUefiBootPath(['boot', 'boot/bootx64.efi'])).toEqual({ present: true, copies: [] });
  });

  it("copies shim with its GRUB and MokManager for Debian's signed chain, never the fallback loader", () => {
    expect(planUefiBootPath(DEBIAN_SHIM, 'debian')).toEqual({
      present: false,
      loader: 'debian/shimx64.efi',
      copies: [
        { from: 'debian/shimx64.efi', to: 'BOOT/BOOTX64.EFI' },
        { from: 'debian/grubx64.efi', to: 'BOOT/grubx64.efi' },
        { from: 'debian/mmx64.efi', to: 'BOOT/mmx64.efi' },
      ],
    });
  });

  it("prefers the inspected distribution's directory when several are there, and GRUB alone without shim", () => {
    const two = ['centos', 'centos/grubx64.efi', 'ubuntu', 'ubuntu/grubx64.efi', 'ubuntu/shimx64.efi'];
    expect(planUefiBootPath(two, 'ubuntu').loader).toBe('ubuntu/shimx64.efi');
    expect(planUefiBootPath(['centos', 'centos/grubx64.efi', 'fedora', 'fedora/grubx64.efi'], 'fedora')).toMatchObject({ loader: 'fedora/grubx64.efi', copies: [{ from: 'fedora/grubx64.efi', to: 'BOOT/BOOTX64.EFI' }] });
  });

  it("uses Windows' boot manager, and says why when there is nothing to boot", () => {
    expect(planUefiBootPath(['Microsoft', 'Microsoft/Boot', 'Microsoft/Boot/bootmgfw.efi'])).toMatchObject({ copies: [{ from: 'Microsoft/Boot/bootmgfw.efi', to: 'BOOT/BOOTX64.EFI' }] });
    expect(planUefiBootPath(['debian', 'debian/grub.cfg'])).toEqual({ present: false, copies: [], reason: 'no boot loader found on the EFI system partition (EFI/ holds debian)' });
  });
});
