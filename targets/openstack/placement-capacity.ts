import type { OpenStackApi } from './openstack-api';

/**
 * What a compute node can still take, as the scheduler counts it: Placement's inventory of its resource provider
 * (the compute node's UUID, which Nova's hypervisor id is since 2.53), less what is reserved, times the allocation
 * ratio, less what allocations use.
 */
export interface FreeCapacity {
  vcpus: number;
  memoryMB: number;
  diskGB: number;
}

type Inventory = Record<string, { total: number; reserved?: number; allocation_ratio?: number }>;

function free(inv: Inventory, usages: Record<string, number>, rc: string): number {
  const i = inv[rc];
  if (!i) return 0;
  return Math.floor((i.total - (i.reserved ?? 0)) * (i.allocation_ratio ?? 1)) - (usages[rc] ?? 0);
}

export async function freeCapacity(placement: OpenStackApi, resourceProvider: string): Promise<FreeCapacity> {
  const rp = encodeURIComponent(resourceProvider);
  const [inv, use] = await Promise.all([
    placement.call<{ inventories: Inventory }>('GET', `/resource_providers/${rp}/inventories`, { what: `reading the inventory of compute node ${resourceProvider}` }),
    placement.call<{ usages: Record<string, number> }>('GET', `/resource_providers/${rp}/usages`, { what: `reading the usage of compute node ${resourceProvider}` }),
  ]);
  return {
    vcpus: free(inv.body.inventories, use.body.usages, 'VCPU'),
    memoryMB: free(inv.body.inventories, use.body.usages, 'MEMORY_MB'),
    diskGB: free(inv.body.inventories, use.body.usages, 'DISK_GB'),
  };
}
