import { KeystoneSession } from '../targets/openstack/keystone-session';
import { NovaLiveMigrations } from '../targets/openstack/nova-live-migrations';
import { OpenStackApi } from '../targets/openstack/openstack-api';
import type { OpenStackTargetConfig } from '../targets/target-config';

/** The target has no admin credentials for host operations (`hostOperations` in its configuration). */
export class HostOperationsNotConfiguredError extends Error {
  override name = 'HostOperationsNotConfiguredError';
}

export interface NovaHostOperations {
  nova: NovaLiveMigrations;
  placement: OpenStackApi;
}

/** Nova and Placement as the target's admin (its `hostOperations` credentials), for live migration and host drain. */
export function novaHostOperations(targetName: string, cfg: OpenStackTargetConfig): NovaHostOperations {
  if (!cfg.hostOperations) {
    throw new HostOperationsNotConfiguredError(
      `target ${targetName} has no hostOperations credentials: live migration and host drain need an admin of the cloud (add hostOperations: {auth, project} to the target)`,
    );
  }
  const session = new KeystoneSession({ ...cfg, auth: cfg.hostOperations.auth });
  return {
    nova: new NovaLiveMigrations(new OpenStackApi(session, cfg.hostOperations.project, 'compute')),
    placement: new OpenStackApi(session, cfg.hostOperations.project, 'placement'),
  };
}
