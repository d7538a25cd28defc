import { checkFlavorFits } from '../../targets/flavor-fit';

const flavors = [
  { name: 'm1.medium', vcpus: 2, ramMB: 4096, diskGB: 40 },
  { name: 'c1.small', vcpus: 2, ramMB: 2048, diskGB: 20 },
  { name: 'm1.tiny', vcpus: 1, ramMB: 512, diskGB: 1 },
  { name: 'm1.small', vcpus: 1, ramMB: 2048, diskGB: 20 },
];
const vm = (vcpus: number, memoryMB: number) => ({ name: 'web01', vcpus, memoryMB });

describe('flavor fit', () => {
  test('a named flavor must exist and match or exceed the source', () => {
    expect(checkFlavorFits(flavors, 'm1.medium', vm(2, 4096))).toEqual({ ok: true, flavor: flavors[0] });
    expect(checkFlavorFits(flavors, 'm1.tiny', vm(1, 1024))).toEqual({
      ok: false,
      reason: "flavor 'm1.tiny' (1 vCPU, 512 MB) is smaller than the source VM (1 vCPU, 1024 MB); choose one that matches or exceeds it",
    });
    expect(checkFlavorFits(flavors, 'x9', vm(1, 1))).toMatchObject({ ok: false, reason: "unknown flavor 'x9'; available: m1.medium, c1.small, m1.tiny, m1.small" });
  });

  test('no flavor named: the smallest that fits, by vCPUs, then memory', () => {
    expect(checkFlavorFits(flavors, undefined, vm(1, 512))).toMatchObject({ ok: true, flavor: { name: 'm1.tiny' } });
    expect(checkFlavorFits(flavors, undefined, vm(1, 1024))).toMatchObject({ ok: true, flavor: { name: 'm1.small' } });
    expect(checkFlavorFits(flavors, undefined, vm(2, 1024))).toMatchObject({ ok: true, flavor: { name: 'c1.small' } });
    expect(checkFlavorFits(flavors, undefined, vm(4, 1024))).toEqual({
      ok: false,
      reason: 'no flavor has at least 4 vCPU and 1024 MB for VM web01; available: m1.medium (2 vCPU, 4096 MB), c1.small (2 vCPU, 2048 MB), m1.tiny (1 vCPU, 512 MB), m1.small (1 vCPU, 2048 MB)',
    });
  });
});
