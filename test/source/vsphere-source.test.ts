import { createHash } from 'node:crypto';
import { sha256File } from '../../tools/disk-image';
import { vsphereSource } from '../../source/vsphere/vsphere-source';
import { VimClient } from '../../vsphere/vim-client';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';

const MiB = 1024 * 1024;

describe('the vSphere source provider against the simulator: plan, a disk over NBD, power', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'vsphere-source',
      { vms: [{ name: 'src01', guestId: 'debian11_64Guest', firmware: 'efi', numCPUs: 2, memoryMB: 2048, powerState: 'poweredOn', disks: [{ capacityMiB: 32 }, { capacityMiB: 8 }], nics: [{ network: 'VM Network' }] }] },
      { diskImages: { src01: 32 * MiB } },
    );
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  it('plans the VM with its disks, NICs and capabilities, serves a disk byte for byte, and powers the VM off and on', async () => {
    const source = vsphereSource(env.config, 'sim');
    expect(source.kind).toBe('vsphere');
    const vc = await VimClient.login({ url: env.sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
    const vm = (await vc.findVm({ name: 'src01' })).value;
    await vc.logout();

    const plan = await source.planMachine(vm);
    expect(plan).toMatchObject({
      kind: 'vsphere',
      machineId: vm,
      name: 'src01',
      hardware: { memoryBytes: 2048 * MiB, firmware: 'efi', nics: [expect.objectContaining({ network: 'VM Network' })] },
      capabilities: { powerControl: true, changeTracking: true, snapshots: true },
    });
    expect(plan.disks.map((d) => d.capacityBytes)).toEqual([32 * MiB, 8 * MiB]);

    const exp = await source.openDisk(vm, plan.disks[0].key, { workDir: env.config.workDir, connections: 2 });
    try {
      expect(exp.size).toBe(32 * MiB);
      const h = createHash('sha256');
      for (let off = 0; off < exp.size; off += 4 * MiB) h.update(await exp.connections[off % 2].read(off, 4 * MiB));
      expect(h.digest('hex')).toBe(await sha256File(env.images.src01));
    } finally {
      await exp.close();
    }

    expect(await source.power!.powerOff(vm)).toEqual({ previous: 'poweredOn' });
    expect(await env.powerState('src01')).toBe('poweredOff');
    await source.power!.powerOn(vm);
    expect(await env.powerState('src01')).toBe('poweredOn');
    await expect(source.openDisk(vm, 99999, { workDir: env.config.workDir })).rejects.toThrow(`VM ${vm} has no disk with key 99999`);
  }, 120_000);
});
