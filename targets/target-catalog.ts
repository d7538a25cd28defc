import type { VmigrateConfig } from '../config/vmigrate-config';
import { DEFAULT_FLAVORS } from './local/flavor-catalog';
import type { Flavor } from './target-provider';

/**
 * What the API knows of the configured targets: names and kinds, and a flavor catalog where it is part of the
 * configuration (the local target). It needs no credentials: a cloud's flavors, networks and quotas are checked by
 * the worker at preflight, in the migration's project.
 */
export interface TargetCatalogEntry {
  name: string;
  kind: 'local' | 'openstack' | 'libvirt';
  /** Known without asking the cloud. */
  flavors?: Flavor[];
}

export interface TargetCatalog {
  defaultTarget: string;
  entries: TargetCatalogEntry[];
}

export function targetCatalog(config: VmigrateConfig): TargetCatalog {
  return {
    defaultTarget: config.defaultTarget,
    entries: Object.entries(config.targets).map(([name, t]) =>
      t.driver === 'local' ? { name, kind: 'local', flavors: [...(t.flavors ?? DEFAULT_FLAVORS)] } : { name, kind: t.driver },
    ),
  };
}

/** Request problems the API can tell without a cloud: an unknown target, or a flavor its static catalog lacks. */
export function checkTargetRequest(catalog: TargetCatalog, target: { name?: string; flavor?: string }): Array<{ field: string; reason: string }> {
  const name = target.name ?? catalog.defaultTarget;
  const entry = catalog.entries.find((e) => e.name === name);
  if (!entry) {
    return [{ field: 'target.name', reason: `unknown target '${name}'; configured: ${catalog.entries.map((e) => e.name).join(', ')}` }];
  }
  if (entry.flavors && target.flavor !== undefined && !entry.flavors.some((f) => f.name === target.flavor)) {
    return [{ field: 'target.flavor', reason: `unknown flavor '${target.flavor}'; available: ${entry.flavors.map((f) => f.name).join(', ')}` }];
  }
  return [];
}
