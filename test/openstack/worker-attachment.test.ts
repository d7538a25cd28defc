import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../config/vmigrate-config';
import { OpenStackTargetProvider } from '../../targets/openstack/openstack-target-provider';
import { WorkerServerAccess } from '../../targets/openstack/volume-access';
import type { OpenStackTargetConfig } from '../../targets/target-config';
import { createLabProject, type LabProject } from '../harness/openstack-lab';

/**
 * attach-to-worker: the worker is a server in the cloud and Nova attaches each volume to it. The Nova and Cinder
 * calls are real (a server on a fake compute stands for the worker); the guest device node cannot appear on this host,
 * so the test names an existing file as the device the worker's kernel would show.
 */
describe('attach-to-worker volume access (Nova os-volume_attachments)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-worker-'));
  let p: LabProject;
  let provider: OpenStackTargetProvider;

  beforeAll(async () => {
    p = await createLabProject('worker', dir);
    const config = parseConfig({ sources: {}, targets: { lab: p.targetConfig() } }, dir);
    provider = new OpenStackTargetProvider({ name: 'lab', config: config.targets.lab as OpenStackTargetConfig, workDir: dir });
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('attaches the volume to the worker server, waits for in-use, and detaches it back to available', async () => {
    const mig = `worker-${Date.now().toString(36)}`;
    const { cinder, nova } = provider.clients(p.projectName);
    // The "worker": a server booted from a volume of its own on a fake compute.
    const root = await provider.createVolume({ project: p.projectName, name: `${mig}-root`, sizeBytes: 1 << 20, volumeType: p.lab.volumeType, owner: { migrationId: mig, disk: 'root' } });
    await provider.setVolumeBootable(root, { firmware: 'bios', machineType: 'pc-i440fx', diskBus: 'virtio', nicModel: 'virtio' }, {});
    const worker = await provider.createInstance({
      project: p.projectName, name: `${mig}-worker`, migrationId: mig, flavor: 'm1.tiny', availabilityZone: p.lab.zones.fake,
      firmware: 'bios', machineType: 'pc-i440fx', diskBus: 'virtio', volumes: [root], nics: [],
    });
    await provider.startInstance(worker);
    const disk = await provider.createVolume({ project: p.projectName, name: `${mig}-disk0`, sizeBytes: 1 << 20, volumeType: p.lab.volumeType, owner: { migrationId: mig, disk: '2000' } });

    const device = path.join(dir, 'virtio-device');
    writeFileSync(device, '');
    const access = new WorkerServerAccess(nova, worker.id, { waitTimeoutMs: 120_000, devicePath: () => device });
    expect(new WorkerServerAccess(nova, worker.id, { waitTimeoutMs: 1 }).devicePath(disk.id)).toBe(`/dev/disk/by-id/virtio-${disk.id.slice(0, 20)}`);
    const attached = await access.attach((await cinder.get(disk.id))!);
    expect(attached).toMatchObject({ path: device, format: 'raw' });
    expect((await cinder.get(disk.id))!.status).toBe('in-use');
    expect((await nova.listVolumeAttachments(worker.id)).map((a) => a.volumeId)).toContain(disk.id);
    await attached.release();
    expect((await cinder.get(disk.id))!.status).toBe('available');
    expect((await nova.listVolumeAttachments(worker.id)).map((a) => a.volumeId)).not.toContain(disk.id);

    // A device that never shows up is an error naming it, and the volume is detached again.
    const never = new WorkerServerAccess(nova, worker.id, { waitTimeoutMs: 2_000, devicePath: () => path.join(dir, 'absent') });
    await expect(never.attach((await cinder.get(disk.id))!)).rejects.toThrow(`volume ${disk.id} is attached to worker server ${worker.id} but ${path.join(dir, 'absent')} did not appear`);
    expect((await cinder.get(disk.id))!.status).toBe('available');

    const released = await provider.releaseMigration({ project: p.projectName, migrationId: mig, keepVolumes: false });
    expect(released.deletedInstances).toEqual([worker.id]);
    expect(released.deletedVolumes.sort()).toEqual([root.id, disk.id].sort());
  }, 300_000);
});
