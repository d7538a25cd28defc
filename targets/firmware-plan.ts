/**
 * What firmware the target instance gets: the source VM's, as vSphere reports it (`config.firmware`,
 * `config.bootOptions.efiSecureBootEnabled`). A guest installed for UEFI boots only with UEFI; one with Secure Boot
 * trusts only a chain of signed boot loaders, and OVMF's Secure Boot builds need SMM, which only the q35 machine
 * type emulates — so a migration that asks for i440fx for such a VM is refused before anything is touched.
 */
export const SECURE_BOOT_NEEDS_Q35 =
  'the source VM boots with UEFI Secure Boot, which needs the q35 machine type on the target (Secure Boot firmware requires SMM); ' +
  "leave target.machineType unset or set it to 'pc-q35'";

export function planFirmware(
  source: { firmware: 'bios' | 'efi'; secureBoot: boolean },
  machineType: 'pc-i440fx' | 'pc-q35' | undefined,
): { ok: true; firmware: 'bios' | 'efi'; secureBoot: boolean; machineType: 'pc-i440fx' | 'pc-q35' } | { ok: false; reason: string } {
  const secureBoot = source.firmware === 'efi' && source.secureBoot;
  const machine = machineType ?? (source.firmware === 'efi' ? 'pc-q35' : 'pc-i440fx');
  if (secureBoot && machine !== 'pc-q35') return { ok: false, reason: SECURE_BOOT_NEEDS_Q35 };
  return { ok: true, firmware: source.firmware, secureBoot, machineType: machine };
}
