import { parseGuestReport } from '../../tools/test-guest/guest-files';
import type { TestGuestImage } from '../../tools/test-guest/test-guest';
import type { Simulator, SimVmSpec } from '../../tools/vcsim/launch';

const MiB = 1024 * 1024;

/** A simulator VM that carries a test guest variant: its firmware, Secure Boot setting and one disk per image. */
export function guestVariantVm(name: string, guest: TestGuestImage): SimVmSpec {
  const v = guest.variant;
  const sizes = [v.diskSizeBytes, ...(v.dataDisk ? [v.dataDisk.sizeBytes] : [])];
  return {
    name,
    guestId: 'debian12_64Guest',
    firmware: v.firmware,
    secureBoot: v.secureBoot,
    numCPUs: 1,
    memoryMB: 1024,
    powerState: 'poweredOn',
    disks: sizes.map((s) => ({ capacityMiB: s / MiB })),
    nics: [{ network: 'VM Network', adapterType: 'vmxnet3' }],
  };
}

/** The boot report line the guest printed on its console (vmigrate-guest-report), or a failure naming what was seen. */
export function bootReport(consoleTail: string): Record<string, string> {
  const report = parseGuestReport(consoleTail);
  if (!report) throw new Error(`the guest's boot report is not in the console tail:\n${consoleTail.slice(-1500)}`);
  return report;
}

/** Puts the guest's disk images into the simulator VM made by guestVariantVm, boot disk first. */
export async function uploadGuestDisks(sim: Simulator, vm: string, guest: TestGuestImage): Promise<void> {
  for (const [i, disk] of guest.disks.entries()) await sim.uploadDiskImage(vm, i, disk);
}
