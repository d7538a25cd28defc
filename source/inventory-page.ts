/**
 * Filtering and paging of a source's inventory. Pages are in (name, moref) order and a page token names the last VM
 * of the page before, not an offset: a VM created or removed between two pages neither repeats nor hides another.
 */
import type { InventoryVm } from '../vsphere/vm-inventory';
import type { PowerState } from '../vsphere/vm-hardware';

export interface InventoryFilter {
  /** Case-insensitive substring of the VM's name. */
  name?: string;
  /** The VM's folder or one below it ("prod" matches "prod" and "prod/web"). */
  folder?: string;
  powerState?: PowerState;
  /** Host name or moref. */
  host?: string;
  /** Templates are left out unless asked for. */
  includeTemplates?: boolean;
}

/** Where the previous page ended. */
export interface InventoryCursor {
  name: string;
  moref: string;
}

export interface InventoryPage {
  vms: InventoryVm[];
  /** VMs that match the filter, on every page. */
  total: number;
  next?: InventoryCursor;
}

export class InvalidPageTokenError extends Error {
  override name = 'InvalidPageTokenError';
}

export function encodePageToken(cursor: InventoryCursor): string {
  return Buffer.from(JSON.stringify([cursor.name, cursor.moref]), 'utf8').toString('base64url');
}

export function decodePageToken(token: string): InventoryCursor {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return { name: v[0], moref: v[1] };
  } catch {
    // answered below
  }
  throw new InvalidPageTokenError('pageToken is not one this API gave out; start again without it');
}

function compare(a: InventoryCursor, b: InventoryCursor): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.moref === b.moref ? 0 : a.moref < b.moref ? -1 : 1;
}

export function matchesFilter(vm: InventoryVm, f: InventoryFilter): boolean {
  if (vm.template && !f.includeTemplates) return false;
  if (f.name && !vm.name.toLowerCase().includes(f.name.toLowerCase())) return false;
  if (f.folder !== undefined) {
    const want = f.folder.replace(/^\/+|\/+$/g, '');
    if (want && vm.folder !== want && !vm.folder.startsWith(`${want}/`)) return false;
  }
  if (f.powerState && vm.powerState !== f.powerState) return false;
  if (f.host && vm.host?.name !== f.host && vm.host?.moref !== f.host) return false;
  return true;
}

export function pageOfInventory(all: readonly InventoryVm[], opts: { filter: InventoryFilter; after?: InventoryCursor; limit: number }): InventoryPage {
  const matching = all.filter((vm) => matchesFilter(vm, opts.filter)).sort(compare);
  const start = opts.after ? matching.findIndex((vm) => compare(vm, opts.after!) > 0) : 0;
  const vms = start < 0 ? [] : matching.slice(start, start + opts.limit);
  const last = vms.at(-1);
  const hasMore = start >= 0 && start + opts.limit < matching.length;
  return { vms, total: matching.length, next: hasMore && last ? { name: last.name, moref: last.moref } : undefined };
}
