import type { Logger } from 'pino';
import type { VmigrateConfig } from '../config/vmigrate-config';
import { LocalTargetProvider } from './local/local-target-provider';
import { OpenStackTargetProvider } from './openstack/openstack-target-provider';
import type { TargetProvider } from './target-provider';
import { TargetRequestError } from './target-errors';

export class UnknownTargetError extends Error {
  override name = 'UnknownTargetError';
}

/**
 * The worker's providers, one per configured target, built on first use (an OpenStack target authenticates only
 * when a migration uses it). A ref or request without a target name means the configuration's default target.
 */
export class TargetProviders {
  private readonly built = new Map<string, TargetProvider>();

  constructor(
    private readonly config: VmigrateConfig,
    private readonly logger: Logger,
    /** Providers given ready-made (tests), by target name. */
    given: TargetProvider[] = [],
  ) {
    for (const p of given) this.built.set(p.name, p);
  }

  get(name?: string): TargetProvider {
    const key = name ?? this.config.defaultTarget;
    const existing = this.built.get(key);
    if (existing) return existing;
    const cfg = this.config.targets[key];
    if (!cfg) {
      throw new UnknownTargetError(`unknown target '${key}'; configured targets: ${Object.keys(this.config.targets).join(', ') || '(none)'}`);
    }
    if (cfg.driver === 'libvirt') {
      // Its hosts take live migrations today (live/libvirt-live-migration-run.ts); landing migrated VMs in its
      // storage pool is not built yet, and saying so beats a half-made volume.
      throw new TargetRequestError(`target ${key} is a libvirt target: it takes live migrations between its hosts, but migrating VMs into it is not supported yet; choose a local or OpenStack target`);
    }
    const provider =
      cfg.driver === 'local'
        ? new LocalTargetProvider({ name: key, dataDir: cfg.dataDir, flavors: cfg.flavors, sharedStorage: cfg.sharedStorage })
        : new OpenStackTargetProvider({ name: key, config: cfg, workDir: this.config.workDir, logger: this.logger.child({ target: key }) });
    this.built.set(key, provider);
    return provider;
  }
}
