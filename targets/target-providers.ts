import type { Logger } from 'pino';
import type { VmigrateConfig } from '../config/vmigrate-config';
import { LibvirtTargetProvider } from './libvirt/libvirt-target-provider';
import { LocalTargetProvider } from './local/local-target-provider';
import { OpenStackTargetProvider } from './openstack/openstack-target-provider';
import type { TargetProvider } from './target-provider';

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
    const provider =
      cfg.driver === 'local'
        ? new LocalTargetProvider({ name: key, dataDir: cfg.dataDir, flavors: cfg.flavors, sharedStorage: cfg.sharedStorage })
        : cfg.driver === 'libvirt'
          ? new LibvirtTargetProvider(key, cfg)
          : new OpenStackTargetProvider({ name: key, config: cfg, workDir: this.config.workDir, logger: this.logger.child({ target: key }) });
    this.built.set(key, provider);
    return provider;
  }
}
