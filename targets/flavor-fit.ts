import type { Flavor } from './target-provider';

/** The source VM's shape, as preflight sees it. */
export interface VmShape {
  name: string;
  vcpus: number;
  memoryMB: number;
}

export type FlavorVerdict = { ok: true; flavor: Flavor } | { ok: false; reason: string };

/**
 * The named flavor must exist and match or exceed the source's vCPUs and memory. No name: the smallest flavor that
 * does (fewest vCPUs, then least memory, then smallest root disk; ties by name, so the choice is stable).
 */
export function checkFlavorFits(flavors: Flavor[], name: string | undefined, vm: VmShape): FlavorVerdict {
  if (name === undefined) {
    const fitting = flavors
      .filter((f) => f.vcpus >= vm.vcpus && f.ramMB >= vm.memoryMB)
      .sort((a, b) => a.vcpus - b.vcpus || a.ramMB - b.ramMB || (a.diskGB ?? 0) - (b.diskGB ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (fitting.length) return { ok: true, flavor: fitting[0] };
    return { ok: false, reason: `no flavor has at least ${vm.vcpus} vCPU and ${vm.memoryMB} MB for VM ${vm.name}; available: ${describe(flavors)}` };
  }
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

function describe(flavors: Flavor[]): string {
  return flavors.map((f) => `${f.name} (${f.vcpus} vCPU, ${f.ramMB} MB)`).join(', ') || '(none)';
}
