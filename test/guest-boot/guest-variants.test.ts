/**
 * Guests as vSphere estates have them, each migrated cold end to end and booted: UEFI on GPT with a data disk,
 * UEFI with Secure Boot on an LVM root (no removable-media boot path: the conversion must add it), and an XFS root
 * (tools/test-guest variants). Each: simulator VM with the variant's firmware → cold migration → inspection →
 * virt-v2v-in-place on clones → instance with the source's firmware → boot check in qemu (OVMF for UEFI, Secure
 * Boot on when the source had it) until the login prompt, after the guest's own report of how it booted and what it
 * mounted. The source disks and the copies keep the image's bytes. Minutes each under TCG.
 */
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { dataDiskMarker } from '../../tools/test-guest/guest-files';
import type { GuestVariantName } from '../../tools/test-guest/recipe';
import { ensureTestGuest, type TestGuestImage } from '../../tools/test-guest/test-guest';
import { coldMigrationStateQuery } from '../../workflows/cold-migration-state';
import { startApi, waitForMigration } from '../harness/api-server';
import { bootReport, guestVariantVm } from '../harness/guest-variant-vm';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { recordRunHistories } from '../harness/record-histories';

const VARIANTS: GuestVariantName[] = ['uefi', 'secureboot-lvm', 'xfs'];

describe('guest variants: converted and booted after a cold migration', () => {
  const guests = {} as Record<GuestVariantName, TestGuestImage>;
  const timings: Record<string, Record<string, number>> = {};
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    for (const v of VARIANTS) guests[v] = await ensureTestGuest(v, { onBuildStart: () => console.log(`[guest-variants] building the ${v} test guest`) });
    env = await createMigrationEnv('variants', { vms: VARIANTS.map((v) => guestVariantVm(v, guests[v])) });
    for (const v of VARIANTS) for (const [i, disk] of guests[v].disks.entries()) await env.sim.uploadDiskImage(v, i, disk);
    await env.startWorker();
    api = await startApi(env);
  }, 20 * 60_000);

  afterAll(async () => {
    console.log(`[guest-variants] timings ${JSON.stringify(timings)}`);
    await api?.close();
    await env?.close();
  });

  /** Migrates the variant's VM with conversion and a boot check; returns what the workflow recorded. */
  async function migrate(name: GuestVariantName) {
    const guest = guests[name];
    const flatFiles = env.sim.vms.find((v) => v.name === name)!.disks.map((d) => path.join(env.sim.datastoreDir, d.flatPath));
    const sourceShas = await Promise.all(guest.disks.map((d) => sha256File(d)));
    const started = Date.now();
    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name },
      target: { project: 'proj1', flavor: 'm1.small', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'auto', bootCheck: { timeoutSeconds: 900 } },
    });
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;
    const status = await waitForMigration(api.http, id, { timeoutMs: 40 * 60_000 });
    expect(status.error).toBeUndefined();
    expect(status).toMatchObject({ status: 'COMPLETED', stage: 'Completed' });
    const state = await env.client.workflow.getHandle(id).query(coldMigrationStateQuery);
    const bootCheck = state.validation!.bootCheck as { passed: boolean; consoleTail: string; durationMs: number; firmware: string; secureBoot?: boolean; machineType: string };
    timings[name] = {
      migrationMs: Date.now() - started,
      inspectionApplianceMs: state.guestInspection!.applianceMs,
      conversionMs: state.guestFix!.conversion!.durationMs,
      bootCheckMs: bootCheck.durationMs,
    };
    // Source disks untouched, and each copy holds the source's bytes (conversion wrote only to clones).
    expect(await Promise.all(flatFiles.map((f) => sha256File(f)))).toEqual(sourceShas);
    const copies = state.disks.map((d) => env.target.volumePath('proj1', d.volume!));
    expect(await Promise.all(copies.map((f) => sha256File(f)))).toEqual(sourceShas);
    expect(bootCheck.passed).toBe(true);
    expect(bootCheck.consoleTail).toMatch(/vmguest login: /);
    return { id, state, bootCheck, report: bootReport(bootCheck.consoleTail), guest };
  }

  it('UEFI on GPT with /srv on a second disk: OVMF boots it, both disks mounted by UUID', async () => {
    const { state, bootCheck, report, guest } = await migrate('uefi');
    expect(state.inspection).toMatchObject({ firmware: 'efi', secureBoot: false });
    expect(state.guestInspection).toMatchObject({ firmware: 'efi', partitionTable: 'gpt', convertible: true, disks: [{ index: 0, partitionTable: 'gpt' }, { index: 1, partitionTable: 'gpt' }] });
    expect(state.guestInspection!.filesystems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ device: '/dev/sda1', type: 'vfat', mountpoint: '/boot/efi' }),
        expect.objectContaining({ device: '/dev/sda2', type: 'ext4', mountpoint: '/' }),
        expect.objectContaining({ device: '/dev/sdb1', type: 'ext4', mountpoint: '/srv' }),
      ]),
    );
    // The guest already had the removable-media path: nothing added.
    expect(state.guestFix!.conversion!.uefiBootPath).toMatchObject({ present: true, added: false });
    expect(bootCheck).toMatchObject({ firmware: 'efi', machineType: 'pc-q35' });
    expect(bootCheck.secureBoot).toBeUndefined();
    // Booted on VirtIO with UEFI; /srv is the second disk's file system with the image's marker.
    expect(report).toMatchObject({ firmware: 'efi', secureboot: 'off', root: '/dev/vda2,ext4', efi: '/dev/vda1,vfat', srv: '/dev/vdb1,ext4', marker: dataDiskMarker(guest.identity) });
    const described = await env.target.describeInstance({ project: 'proj1', name: 'uefi' });
    expect(described!.spec).toMatchObject({ firmware: 'efi', machineType: 'pc-q35' });
    expect(described!.spec.volumes).toHaveLength(2);
  }, 45 * 60_000);

  it('Secure Boot on an LVM root, boot entry only: the fallback path is added and it boots with Secure Boot on', async () => {
    const { id, state, bootCheck, report } = await migrate('secureboot-lvm');
    // Re-record the replay test's history of this path (Secure Boot, the guest preflight, the UEFI boot path added):
    // VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories.
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, id, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'cold-migration-guest-preflight-v1'));
    expect(state.inspection).toMatchObject({ firmware: 'efi', secureBoot: true });
    expect(state.guestInspection).toMatchObject({ firmware: 'efi', partitionTable: 'gpt', convertible: true });
    expect(state.guestInspection!.filesystems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ device: '/dev/sda2', type: 'LVM2_member' }),
        expect.objectContaining({ device: '/dev/vmguest-vg/root', type: 'ext4', mountpoint: '/' }),
      ]),
    );
    // Debian's installer leaves only EFI/debian: shim, its GRUB and MokManager are copied to EFI/BOOT (not fbx64.efi).
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
    expect(bootCheck).toMatchObject({ firmware: 'efi', secureBoot: true, machineType: 'pc-q35' });
    // The guest read Secure Boot on from its firmware's SecureBoot variable; the root came up from the logical volume on VirtIO.
    expect(report).toMatchObject({ firmware: 'efi', secureboot: 'on', root: '/dev/mapper/vmguest--vg-root,ext4', efi: '/dev/vda1,vfat' });
    const described = await env.target.describeInstance({ project: 'proj1', name: 'secureboot-lvm' });
    expect(described!.spec).toMatchObject({ firmware: 'efi', secureBoot: true, machineType: 'pc-q35' });
  }, 45 * 60_000);

  it('XFS root on BIOS: converted (xfs in the new initramfs) and booted', async () => {
    const { state, bootCheck, report } = await migrate('xfs');
    expect(state.inspection).toMatchObject({ firmware: 'bios', secureBoot: false });
    expect(state.guestInspection).toMatchObject({ firmware: 'bios', partitionTable: 'mbr', convertible: true });
    expect(state.guestInspection!.filesystems).toEqual([expect.objectContaining({ device: '/dev/sda1', type: 'xfs', mountpoint: '/' })]);
    expect(state.guestFix!.conversion!.uefiBootPath).toBeUndefined();
    expect(bootCheck).toMatchObject({ firmware: 'bios', machineType: 'pc-i440fx' });
    expect(report).toMatchObject({ firmware: 'bios', secureboot: 'off', root: '/dev/vda1,xfs' });
  }, 45 * 60_000);
});
