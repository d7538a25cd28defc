import type { Flavor } from './target-provider';

/** The source VM's shape, as preflight sees it. */
export interface VmShape {
  name: string;
  vcpus: number;
  memoryMB: number;
}

export type FlavorVerdict = { ok: true; flavor: Flavor } | { ok: false; reason: string };

/** The named flavor must exist and match or exceed the source's vCPUs and memory. */
export function checkFlavorFits(flavors: Flavor[], name: string, vm: VmShape): FlavorVerdict {
  const flavor = flavors.find((f) => f.name === name);
  if (!flavor) return { ok: false, reason: `unknown flavor '${name}'; available: ${flavors.map((f) => f.name).join(', ') || '(none)'}` };
  if (flavor.vcpus < vm.vcpus || flavor.ramMB < vm.memoryMB) {
    return {
      ok: false,
      reason:
        `flavor '${flavor.name}' (${flavor.vcpus} vCPU, ${flavor.ramMB} MB) is smaller than the source VM ` +
        `(${vm.vcpus} vCPU, ${vm.memoryMB} MB); choose one that matches or exceeds it`,
    };
  }
  return { ok: true, flavor };
}
