import type { Flavor } from '../target-provider';

/** Shapes the embedded target offers unless configured otherwise (OpenStack's classic m1.* sizes). */
export const DEFAULT_FLAVORS: readonly Flavor[] = [
  { name: 'm1.small', vcpus: 1, ramMB: 2048 },
  { name: 'm1.medium', vcpus: 2, ramMB: 4096 },
  { name: 'm1.large', vcpus: 4, ramMB: 8192 },
  { name: 'm1.xlarge', vcpus: 8, ramMB: 16384 },
];

export class FlavorCatalog {
  private readonly byName: Map<string, Flavor>;

  constructor(flavors: readonly Flavor[] = DEFAULT_FLAVORS) {
    this.byName = new Map();
    for (const f of flavors) {
      if (!f.name || !Number.isInteger(f.vcpus) || f.vcpus < 1 || !Number.isInteger(f.ramMB) || f.ramMB < 1) {
        throw new Error(`invalid flavor ${JSON.stringify(f)}: needs a name, vcpus >= 1 and ramMB >= 1`);
      }
      if (this.byName.has(f.name)) throw new Error(`flavor ${f.name} is defined twice`);
      this.byName.set(f.name, { ...f });
    }
  }

  list(): Flavor[] {
    return [...this.byName.values()].map((f) => ({ ...f }));
  }

  get(name: string): Flavor {
    const flavor = this.byName.get(name);
    if (!flavor) throw new Error(`unknown flavor ${JSON.stringify(name)}; known flavors: ${[...this.byName.keys()].join(', ')}`);
    return { ...flavor };
  }
}
