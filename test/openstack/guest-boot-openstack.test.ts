/**
 * The real guest into the real cloud: the Debian test guest with UEFI Secure Boot and an XFS root on LVM
 * (tools/test-guest, variant secureboot-lvm-xfs) on a simulator VM with Secure Boot on → cold migration into Cinder → virt-v2v-in-place on
 * a Cinder clone of the copied volume (and the removable-media boot path added) → a Nova server on the libvirt/qemu
 * compute, given UEFI with Secure Boot on q35 by the volume's image properties, boots from the converted clone → its
 * console (os-getConsoleOutput) shows the kernel in Secure Boot mode and the login prompt. Minutes under TCG.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { ensureTestGuest } from '../../tools/test-guest/test-guest';
import { coldMigrationStateQuery } from '../../workflows/cold-migration-state';
import { startApi, waitForMigration } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { createLabProject, resourcesOfMigration, type LabProject } from '../harness/openstack-lab';
import { bootReport, guestVariantVm, uploadGuestDisks } from '../harness/guest-variant-vm';
import { recordRunHistories } from '../harness/record-histories';
import { leadingSha } from './volume-bytes';

const MiB = 1024 * 1024;

describe('a converted guest boots in OpenStack, on the libvirt compute', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;
  let p: LabProject;
  let guestSha = '';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-guest-'));

  beforeAll(async () => {
    const guest = await ensureTestGuest('secureboot-lvm-xfs', { onBuildStart: () => console.log('[guest-boot-openstack] building the test guest (first run on this machine)') });
    guestSha = await sha256File(guest.path);
    p = await createLabProject('guest', dir);
    env = await createMigrationEnv(
      'os-guest',
      {
        vms: [guestVariantVm('deb12', guest)],
      },
      { targets: { lab: p.targetConfig() }, defaultTarget: 'lab' },
    );
    await uploadGuestDisks(env.sim, 'deb12', guest);
    await env.startWorker();
    api = await startApi(env);
  }, 20 * 60_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies byte for byte, converts on a clone, and the server reaches its login prompt', async () => {
    const lab = p.lab;
    expect(lab.zones.libvirt).toBeDefined();
    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'deb12' },
      target: {
        project: p.projectName,
        flavor: 'm1.small',
        volumeType: lab.volumeType,
        availabilityZone: lab.zones.libvirt,
        networks: [{ sourceNetwork: 'VM Network', targetNetwork: p.network.name, preserveMac: true }],
      },
      guest: { convert: 'auto', bootCheck: { timeoutSeconds: 900 } },
    });
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;
    const status = await waitForMigration(api.http, id, { timeoutMs: 40 * 60_000 });
    expect(status).toMatchObject({ status: 'COMPLETED', stage: 'Completed' });
    const state = await env.client.workflow.getHandle(id).query(coldMigrationStateQuery);

    // The copied volume holds the source's bytes (conversion wrote only to its clone).
    const made = await resourcesOfMigration(p, id);
    const copied = made.volumes.find((v) => v.metadata['vmigrate.disk'] === '2000')!;
    const clone = made.volumes.find((v) => v.metadata['vmigrate.disk'] === `converted-${copied.id}`)!;
    expect(made.volumes).toHaveLength(2);
    expect(await leadingSha(path.join(lab.shareExportDir, `volume-${copied.id}`), 2048 * MiB)).toEqual({ sha: guestSha, tailZero: true });

    // The server boots from the converted clone, marked bootable with the image properties of the conversion.
    expect(clone).toMatchObject({ bootable: 'true', source_volid: copied.id });
    expect(clone.volume_image_metadata).toMatchObject({
      hw_disk_bus: 'virtio',
      hw_machine_type: 'q35',
      hw_firmware_type: 'uefi',
      os_secure_boot: 'required',
      hw_vif_model: 'virtio',
      os_type: 'linux',
      os_distro: 'debian',
    });
    expect(made.servers).toHaveLength(1);
    expect(made.servers[0]['os-extended-volumes:volumes_attached'].map((v: { id: string }) => v.id)).toEqual([clone.id]);
    expect(made.servers[0]['OS-EXT-AZ:availability_zone']).toBe(lab.zones.libvirt);
    expect(made.ports.map((x) => x.mac_address)).toEqual([env.sim.vms[0].nics[0].macAddress.toLowerCase()]);

    // Booted in the cloud: Nova's console output shows the guest's login prompt.
    // vSphere said EFI with Secure Boot; the disks agree (an ESP, no BIOS boot partition); the root is XFS on LVM.
    expect(state.inspection).toMatchObject({ firmware: 'efi', secureBoot: true });
    expect(state.guestInspection).toMatchObject({ firmware: 'efi', partitionTable: 'gpt', convertible: true });
    expect(state.guestInspection!.filesystems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ device: '/dev/sda1', type: 'vfat', mountpoint: '/boot/efi' }),
        expect.objectContaining({ device: '/dev/sda2', type: 'LVM2_member' }),
        expect.objectContaining({ device: '/dev/vmguest-vg/root', type: 'xfs', mountpoint: '/' }),
      ]),
    );
    // Debian's installer left only EFI/debian: shim, its GRUB and MokManager were copied to EFI/BOOT (not fbx64.efi),
    // which is all a fresh NVRAM can boot.
    expect(state.guestFix).toMatchObject({ converted: true });
    expect(state.guestFix!.conversion!.uefiBootPath).toMatchObject({
      present: false,
      added: true,
      loader: 'debian/shimx64.efi',
      copies: [
        { from: 'debian/shimx64.efi', to: 'BOOT/BOOTX64.EFI' },
        { from: 'debian/grubx64.efi', to: 'BOOT/grubx64.efi' },
        { from: 'debian/mmx64.efi', to: 'BOOT/mmx64.efi' },
      ],
    });
    expect(state.validation!.bootCheck).toMatchObject({ passed: true, bootedIn: 'target', instance: `${p.projectName}/deb12` });
    const consoleTail = (state.validation!.bootCheck as { consoleTail: string }).consoleTail;
    expect(consoleTail).toMatch(/vmguest login: /);
    // Nova gave it OVMF with Secure Boot enforced (the Microsoft keys that sign shim enrolled); the XFS root on LVM on VirtIO.
    expect(bootReport(consoleTail)).toMatchObject({ firmware: 'efi', secureboot: 'on', root: '/dev/mapper/vmguest--vg-root,xfs', efi: '/dev/vda1,vfat' });
    // Checked, not launched: the server is off again, as Finalize left it.
    expect(status.instance.status).toBe('SHUTOFF');
    expect((await resourcesOfMigration(p, id)).servers[0].status).toBe('SHUTOFF');

    // Re-record the replay test's history of this path (Secure Boot, the guest preflight, the UEFI boot path added):
    // VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-guest-preflight-v1'));
  }, 45 * 60_000);
});
