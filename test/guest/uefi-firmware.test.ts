import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selectUefiFirmware } from '../../guest/uefi-firmware';

/** Against the descriptors Debian's ovmf package installs (scripts/setup.sh installs it), as libvirt and Nova read them. */
describe('UEFI firmware for a boot check, from QEMU firmware descriptors', () => {
  it('Secure Boot on q35: the build with the Microsoft keys enrolled, with SMM', () => {
    const fw = selectUefiFirmware({ machine: 'pc-q35', secureBoot: true });
    expect(fw).toMatchObject({ code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd', requiresSmm: true, secureBoot: true });
    expect(fw.descriptor).toBe('/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json');
  });

  it('without Secure Boot, on either machine type: plain OVMF, no SMM', () => {
    for (const machine of ['pc-q35', 'pc-i440fx'] as const) {
      expect(selectUefiFirmware({ machine, secureBoot: false })).toMatchObject({ code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd', requiresSmm: false, secureBoot: false });
    }
  });

  it('refuses Secure Boot on i440fx with the reason, and names what was looked at when nothing fits', () => {
    expect(() => selectUefiFirmware({ machine: 'pc-i440fx', secureBoot: true })).toThrow(/Secure Boot needs the q35 machine type .*the instance has pc-i440fx/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fw-'));
    // A descriptor with Secure Boot but no enrolled keys: shim would not be trusted, so it does not count.
    writeFileSync(
      path.join(dir, '50-secure.json'),
      JSON.stringify({
        'interface-types': ['uefi'],
        mapping: { device: 'flash', executable: { filename: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', format: 'raw' }, 'nvram-template': { filename: '/usr/share/OVMF/OVMF_VARS_4M.fd', format: 'raw' } },
        targets: [{ architecture: 'x86_64', machines: ['pc-q35-*'] }],
        features: ['requires-smm', 'secure-boot'],
      }),
    );
    expect(() => selectUefiFirmware({ machine: 'pc-q35', secureBoot: true, dirs: [dir] })).toThrow(
      /no UEFI with Secure Boot and enrolled keys firmware for pc-q35 among QEMU's firmware descriptors \(50-secure.json\): install OVMF/,
    );
    expect(() => selectUefiFirmware({ machine: 'pc-q35', secureBoot: false, dirs: [path.join(dir, 'none')] })).toThrow(/none in .*\/none/);
  });
});
