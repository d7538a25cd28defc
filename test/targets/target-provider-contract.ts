import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type { NicSpec, TargetProvider, VolumeRef } from '../../targets/target-provider';

/**
 * What every target provider must do, run against each one (local and OpenStack today): a new provider starts by
 * passing this. Each case uses its own migration id, so providers backed by a shared cloud can run it repeatedly.
 */
export interface ContractSetup {
  provider: TargetProvider;
  project: string;
  volumeType: string;
  flavor: string;
  /** NICs to give the instance (a cloud with ports checks their MACs). */
  nics: NicSpec[];
  availabilityZone?: string;
  /** The MACs of the instance's NICs as the cloud reports them, for providers with ports. */
  instanceMacs?(instanceId: string): Promise<string[]>;
  cleanup?(): Promise<void>;
}

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let run = 0;
const migrationId = () => `contract-${process.pid}-${Date.now().toString(36)}-${run++}`;

async function readAll(provider: TargetProvider, ref: VolumeRef): Promise<Buffer> {
  const t = await provider.openVolume(ref);
  try {
    return await t.read(0, t.size);
  } finally {
    await t.close();
  }
}

export function describeTargetProviderContract(name: string, setup: () => Promise<ContractSetup>, opts: { timeoutMs?: number } = {}): void {
  const timeout = opts.timeoutMs ?? 120_000;
  describe(`target provider contract: ${name}`, () => {
    let s: ContractSetup;
    beforeAll(async () => {
      s = await setup();
    }, 10 * 60_000);
    afterAll(async () => {
      await s?.cleanup?.();
    });

    test("listChoices offers what the contract's own volumes and instance use: its flavor, volume type, networks, subnets and zone", async () => {
      const c = await s.provider.listChoices(s.project);
      expect(c.flavors.map((f) => f.name)).toContain(s.flavor);
      for (const f of c.flavors) expect([f.vcpus, f.ramMB].every((n) => Number.isInteger(n) && n > 0)).toBe(true);
      // A list the target leaves out is one it does not restrict.
      if (c.volumeTypes) expect(c.volumeTypes.map((t) => t.name)).toContain(s.volumeType);
      if (c.networks) {
        for (const nic of s.nics) {
          const net = c.networks.find((n) => n.name === nic.network);
          expect(net).toBeDefined();
          if (nic.subnet) expect(net!.subnets.map((x) => x.name)).toContain(nic.subnet);
        }
      }
      if (s.availabilityZone) expect(c.availabilityZones).toContain(s.availabilityZone);
    }, timeout);

    test('createVolume is idempotent by owner and the volume holds exactly what was written', async () => {
      const mig = migrationId();
      const spec = { project: s.project, name: `${mig}-disk0`, sizeBytes: 8 * MiB + 4096, volumeType: s.volumeType, owner: { migrationId: mig, disk: '2000' } };
      const a = await s.provider.createVolume(spec);
      const b = await s.provider.createVolume(spec);
      expect(b.id).toBe(a.id);
      expect(a).toMatchObject({ target: s.provider.name, project: s.project, sizeBytes: spec.sizeBytes });
      expect(await s.provider.findVolume(s.project, spec.owner)).toMatchObject({ id: a.id });
      expect(await s.provider.findVolume(s.project, { migrationId: mig, disk: '2001' })).toBeUndefined();

      const data = randomBytes(spec.sizeBytes);
      const t = await s.provider.openVolume(a);
      try {
        expect(t.size).toBe(spec.sizeBytes);
        await t.write(0, data);
        await t.flush();
        await expect(t.write(spec.sizeBytes - 1, Buffer.alloc(2))).rejects.toThrow(/outside/);
      } finally {
        await t.close();
      }
      expect(sha(await readAll(s.provider, a))).toBe(sha(data));

      const report = await s.provider.releaseMigration({ project: s.project, migrationId: mig, keepVolumes: false });
      expect(report.deletedVolumes).toHaveLength(1);
      expect(await s.provider.findVolume(s.project, spec.owner)).toBeUndefined();
      await s.provider.deleteVolume(a); // deleting what is gone is fine
    }, timeout);

    test('a clone starts with its base bytes, and writes to it never reach the base', async () => {
      const mig = migrationId();
      const base = await s.provider.createVolume({ project: s.project, name: `${mig}-disk0`, sizeBytes: 4 * MiB, volumeType: s.volumeType, owner: { migrationId: mig, disk: '2000' } });
      const data = randomBytes(4 * MiB);
      data.fill(0x5a, 0, 65536);
      const t = await s.provider.openVolume(base);
      await t.write(0, data);
      await t.flush();
      await t.close();

      const owner = { migrationId: mig, disk: `converted-${base.id}` };
      const clone = await s.provider.cloneVolume(base, { name: `${mig}-disk0-converted`, owner });
      expect((await s.provider.cloneVolume(base, { name: `${mig}-disk0-converted`, owner })).id).toBe(clone.id);
      expect(clone.id).not.toBe(base.id);
      const att = await s.provider.attachVolume(clone);
      try {
        // qemu-io reads and writes either format the way virt-v2v and the boot check open attachments.
        const read = execFileSync('qemu-io', ['-f', att.format, '-c', 'read -P 0x5a 0 65536', att.path], { encoding: 'utf8' });
        expect(read).toMatch(/read 65536\/65536 bytes/);
        execFileSync('qemu-io', ['-f', att.format, '-c', 'write -P 7 0 65536', att.path]);
      } finally {
        await att.detach();
      }
      expect(sha(await readAll(s.provider, base))).toBe(sha(data));

      const report = await s.provider.releaseMigration({ project: s.project, migrationId: mig, keepVolumes: false });
      expect(report.deletedVolumes).toHaveLength(2);
      expect(await s.provider.findVolume(s.project, owner)).toBeUndefined();
    }, timeout);

    test('finalize: a bootable volume and an instance, created once, powered off until started; release removes it all', async () => {
      const mig = migrationId();
      const boot = await s.provider.createVolume({ project: s.project, name: `${mig}-disk0`, sizeBytes: 4 * MiB, volumeType: s.volumeType, owner: { migrationId: mig, disk: '2000' } });
      await s.provider.setVolumeBootable(boot, { firmware: 'bios', machineType: 'pc-i440fx', diskBus: 'virtio', nicModel: 'virtio', osType: 'linux', osDistro: 'debian' }, { migrationId: mig });
      const spec = {
        project: s.project,
        name: `${mig}-vm`,
        migrationId: mig,
        flavor: s.flavor,
        availabilityZone: s.availabilityZone,
        firmware: 'bios' as const,
        machineType: 'pc-i440fx' as const,
        diskBus: 'virtio' as const,
        volumes: [boot],
        nics: s.nics,
        metadata: { migrationId: mig },
      };
      const a = await s.provider.createInstance(spec);
      expect(a).toMatchObject({ target: s.provider.name, project: s.project, name: spec.name, status: 'SHUTOFF' });
      expect((await s.provider.createInstance(spec)).id).toBe(a.id);
      if (s.instanceMacs) {
        const macs = await s.instanceMacs(a.id);
        expect(macs).toHaveLength(s.nics.length);
        expect(macs).toEqual(expect.arrayContaining(s.nics.filter((n) => n.preserveMac).map((n) => n.sourceMac.toLowerCase())));
      }
      expect((await s.provider.startInstance(a)).status).toBe('ACTIVE');
      expect((await s.provider.getInstance(a))?.status).toBe('ACTIVE');

      const report = await s.provider.releaseMigration({ project: s.project, migrationId: mig, keepVolumes: false });
      expect(report.deletedInstances).toHaveLength(1);
      expect(report.deletedVolumes).toHaveLength(1);
      expect(report.deletedPorts).toHaveLength(s.provider.capabilities.ports ? s.nics.length : 0);
      expect(await s.provider.getInstance(a)).toBeUndefined();
    }, timeout);

    test('release keeps the volumes when asked, and removes the rest', async () => {
      const mig = migrationId();
      const v = await s.provider.createVolume({ project: s.project, name: `${mig}-disk0`, sizeBytes: MiB, volumeType: s.volumeType, owner: { migrationId: mig, disk: '2000' } });
      const kept = await s.provider.releaseMigration({ project: s.project, migrationId: mig, keepVolumes: true });
      expect(kept.deletedVolumes).toEqual([]);
      expect(await s.provider.findVolume(s.project, { migrationId: mig, disk: '2000' })).toMatchObject({ id: v.id });
      await s.provider.deleteVolume(v);
      expect(await s.provider.findVolume(s.project, { migrationId: mig, disk: '2000' })).toBeUndefined();
    }, timeout);
  });
}
