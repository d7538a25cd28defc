/**
 * Which UEFI firmware a boot check runs a guest in, chosen the way libvirt and Nova choose it: from QEMU's firmware
 * descriptors (/usr/share/qemu/firmware/*.json, overridden by same-named files in /etc/qemu/firmware; docs/interop/
 * firmware.json in QEMU), in file-name order, the first for x86_64 and the machine type whose features match —
 * Secure Boot with the Microsoft keys enrolled (what shim is signed for) when the source VM had Secure Boot on, no
 * Secure Boot otherwise. So the worker's check boots a guest with the same OVMF build and variable store the target
 * cloud would give it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface UefiFirmware {
  /** Read-only code flash. */
  code: string;
  /** Template of the variable store; copied per boot, never written. */
  varsTemplate: string;
  /** Secure Boot needs SMM, so the firmware's variable store cannot be written around it. */
  requiresSmm: boolean;
  secureBoot: boolean;
  descriptor: string;
}

interface FirmwareDescriptor {
  'interface-types'?: string[];
  mapping?: { device?: string; executable?: { filename?: string; format?: string }; 'nvram-template'?: { filename?: string; format?: string } };
  targets?: Array<{ architecture?: string; machines?: string[] }>;
  features?: string[];
}

export const FIRMWARE_DESCRIPTOR_DIRS = ['/usr/share/qemu/firmware', '/etc/qemu/firmware'];

export function selectUefiFirmware(opts: { machine: 'pc-i440fx' | 'pc-q35'; secureBoot: boolean; dirs?: string[] }): UefiFirmware {
  const byName = new Map<string, string>();
  for (const dir of opts.dirs ?? FIRMWARE_DESCRIPTOR_DIRS) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (f.endsWith('.json')) byName.set(f, path.join(dir, f));
  }
  // QEMU's machine names carry a version (pc-q35-7.2); descriptors match them with globs (pc-q35-*).
  const machineName = `${opts.machine}-0`;
  const considered: string[] = [];
  for (const name of [...byName.keys()].sort()) {
    const file = byName.get(name)!;
    let d: FirmwareDescriptor;
    try {
      d = JSON.parse(readFileSync(file, 'utf8')) as FirmwareDescriptor;
    } catch {
      continue;
    }
    const features = d.features ?? [];
    const code = d.mapping?.executable?.filename;
    const vars = d.mapping?.['nvram-template']?.filename;
    if (!d['interface-types']?.includes('uefi') || d.mapping?.device !== 'flash' || !code || !vars) continue;
    if (d.mapping.executable?.format && d.mapping.executable.format !== 'raw') continue;
    const fits = (d.targets ?? []).some((t) => t.architecture === 'x86_64' && (t.machines ?? []).some((glob) => globMatches(glob, machineName)));
    if (!fits) continue;
    considered.push(name);
    const secure = features.includes('secure-boot');
    if (secure !== opts.secureBoot) continue;
    if (opts.secureBoot && !features.includes('enrolled-keys')) continue;
    if (!existsSync(code) || !existsSync(vars)) continue;
    return { code, varsTemplate: vars, requiresSmm: features.includes('requires-smm'), secureBoot: secure, descriptor: file };
  }
  const want = opts.secureBoot ? 'UEFI with Secure Boot and enrolled keys' : 'UEFI without Secure Boot';
  if (opts.secureBoot && opts.machine !== 'pc-q35') {
    throw new Error(`Secure Boot needs the q35 machine type (OVMF's Secure Boot builds require SMM, which only q35 emulates); the instance has ${opts.machine}`);
  }
  throw new Error(
    `no ${want} firmware for ${opts.machine} among QEMU's firmware descriptors (${considered.join(', ') || `none in ${(opts.dirs ?? FIRMWARE_DESCRIPTOR_DIRS).join(', ')}`}): install OVMF (apt-get install ovmf)`,
  );
}

function globMatches(glob: string, name: string): boolean {
  const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}
