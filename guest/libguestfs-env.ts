import { accessSync, constants, readFileSync } from 'node:fs';

/**
 * How guest tools run qemu here: libguestfs (inspection, virt-v2v) with its `direct` backend (no libvirtd needed), and
 * TCG when the host cannot do KVM. A machine whose /dev/kvm exists but whose CPU shows no vmx/svm (nested
 * virtualisation without it, as in the CI VM) must use TCG: KVM would fail or hang there. VMIGRATE_GUEST_ACCEL=kvm|tcg
 * overrides the detection; LIBGUESTFS_BACKEND / LIBGUESTFS_BACKEND_SETTINGS already set in the worker's environment
 * are kept.
 */
export type GuestAccel = 'kvm' | 'tcg';

let detected: GuestAccel | undefined;

export function guestAccel(): GuestAccel {
  const forced = process.env.VMIGRATE_GUEST_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (forced) throw new Error(`VMIGRATE_GUEST_ACCEL must be kvm or tcg (got '${forced}')`);
  detected ??= kvmUsable() ? 'kvm' : 'tcg';
  return detected;
}

function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

/** The environment for libguestfs tools (guestfish, virt-v2v-in-place) started by the worker. */
export function libguestfsEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, LIBGUESTFS_BACKEND: base.LIBGUESTFS_BACKEND ?? 'direct' };
  if (base.LIBGUESTFS_BACKEND_SETTINGS === undefined && guestAccel() === 'tcg') env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg';
  return env;
}
