import type { NovaHostOperations } from './nova-host-operations';
import type { ServerPlacement } from '../targets/openstack/nova-live-migrations';

/**
 * The host side of a drain: its compute service disabled with a reason (the scheduler places nothing new there and
 * no live migration picks it), the servers still on it, and the service enabled again when asked.
 */
export async function disableHost(ops: NovaHostOperations, input: { host: string; reason: string }): Promise<{ serviceId: string; wasEnabled: boolean }> {
  const service = (await ops.nova.computeServices()).find((s) => s.host === input.host);
  if (!service) throw new Error(`no compute host ${input.host}`);
  if (service.enabled || service.disabledReason !== input.reason) await ops.nova.setComputeService(service.id, { enabled: false, reason: input.reason });
  return { serviceId: service.id, wasEnabled: service.enabled };
}

export async function serversOn(ops: NovaHostOperations, host: string): Promise<Array<Pick<ServerPlacement, 'id' | 'name' | 'status'>>> {
  return (await ops.nova.serversOnHost(host)).map((s) => ({ id: s.id, name: s.name, status: s.status }));
}

export async function enableHost(ops: NovaHostOperations, input: { serviceId: string }): Promise<void> {
  await ops.nova.setComputeService(input.serviceId, { enabled: true });
}
