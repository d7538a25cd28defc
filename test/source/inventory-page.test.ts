import { decodePageToken, encodePageToken, InvalidPageTokenError, pageOfInventory } from '../../source/inventory-page';
import type { InventoryVm } from '../../vsphere/vm-inventory';

const vm = (name: string, moref: string, extra: Partial<InventoryVm> = {}): InventoryVm =>
  ({ name, moref, template: false, folder: '', powerState: 'poweredOn', ...extra }) as InventoryVm;

describe('inventory pages', () => {
  it('continues after the last VM of the previous page even when the inventory changed in between', () => {
    const before = [vm('b', 'vm-2'), vm('a', 'vm-1'), vm('c', 'vm-3'), vm('d', 'vm-4')];
    const first = pageOfInventory(before, { filter: {}, limit: 2 });
    expect(first.vms.map((v) => v.name)).toEqual(['a', 'b']);
    const token = encodePageToken(first.next!);
    // "b" was deleted and "ab" created before the next page was asked for: neither skips "c" nor repeats "a".
    const after = [vm('a', 'vm-1'), vm('ab', 'vm-9'), vm('c', 'vm-3'), vm('d', 'vm-4')];
    const second = pageOfInventory(after, { filter: {}, after: decodePageToken(token), limit: 2 });
    expect(second.vms.map((v) => v.name)).toEqual(['c', 'd']);
    expect(second.next).toBeUndefined();
  });

  it('orders VMs of the same name by moref, and leaves templates out unless asked', () => {
    const all = [vm('x', 'vm-20'), vm('x', 'vm-10'), vm('t', 'vm-5', { template: true })];
    expect(pageOfInventory(all, { filter: {}, limit: 10 }).vms.map((v) => v.moref)).toEqual(['vm-10', 'vm-20']);
    expect(pageOfInventory(all, { filter: { includeTemplates: true }, limit: 10 }).total).toBe(3);
  });

  it('refuses tokens it did not give out', () => {
    for (const bad of ['', 'x', Buffer.from('{"a":1}').toString('base64url'), Buffer.from('[1,2]').toString('base64url')]) {
      expect(() => decodePageToken(bad)).toThrow(InvalidPageTokenError);
    }
  });
});
