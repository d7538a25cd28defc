/**
 * A source's inventory kept for a short while on the worker: paging through a few hundred VMs, then preflighting some
 * of them, reads vCenter once instead of once per request. Concurrent readers of a stale entry share one read.
 */
import type { InventoryVm } from '../vsphere/vm-inventory';

export interface InventorySnapshot {
  vms: InventoryVm[];
  readAt: number;
}

export class InventoryCache {
  private readonly entries = new Map<string, InventorySnapshot>();
  private readonly reading = new Map<string, Promise<InventorySnapshot>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The cached inventory when younger than maxAgeMs, else a fresh read (one at a time per source). */
  async get(sourceId: string, maxAgeMs: number, read: () => Promise<InventoryVm[]>): Promise<InventorySnapshot> {
    const cached = this.entries.get(sourceId);
    if (cached && this.now() - cached.readAt <= maxAgeMs) return cached;
    let pending = this.reading.get(sourceId);
    if (!pending) {
      pending = read()
        .then((vms) => {
          const snapshot = { vms, readAt: this.now() };
          this.entries.set(sourceId, snapshot);
          return snapshot;
        })
        .finally(() => this.reading.delete(sourceId));
      this.reading.set(sourceId, pending);
    }
    return pending;
  }
}
