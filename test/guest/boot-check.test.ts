import { qemuArgs, runBootCheck, type BootCheckRequest } from '../../guest/boot-check';
import { ImageWorkspace, MiB } from './helpers/disk-image';

let ws: ImageWorkspace;
beforeEach(() => {
  ws = new ImageWorkspace();
});
afterEach(() => ws.cleanup());

const request = (over: Partial<BootCheckRequest> = {}): BootCheckRequest => ({
  disks: [{ path: '/volumes/boot.qcow2', format: 'qcow2' }],
  diskBus: 'virtio',
  machineType: 'pc-i440fx',
  firmware: 'bios',
  memoryMB: 512,
  vcpus: 1,
  nicModel: 'virtio',
  timeoutMs: 60_000,
  ...over,
});

describe('boot check', () => {
  test('a disk without a boot loader fails on the firmware\'s words (not at the timeout), and the console tail shows them', async () => {
    const image = ws.blank(8 * MiB);
    const result = await runBootCheck(request({ disks: [{ path: image, format: 'raw' }] }));
    expect(result.passed).toBe(false);
    expect(result.reason).toMatch(/did not boot: "No bootable device\.?/);
    expect(result.consoleTail).toMatch(/SeaBIOS/);
    // SeaBIOS's own words about the disk (its serial output sometimes doubles a character: "Booting from HHard Disk").
    expect(result.consoleTail).toMatch(/Booting from H+ard Disk\.\.\.\s*Boot failed: not a bootable disk/);
  }, 90_000);

  test('UEFI with Secure Boot: OVMF with enrolled keys enforces it (its own shell is refused) and, finding nothing to boot, fails fast', async () => {
    const image = ws.blank(8 * MiB);
    const result = await runBootCheck(request({ disks: [{ path: image, format: 'raw' }], firmware: 'efi', secureBoot: true, machineType: 'pc-q35', diskBus: 'sata', nicModel: 'e1000' }));
    expect(result.passed).toBe(false);
    expect(result.reason).toMatch(/did not boot: "BdsDxe: No bootable option or device was found\./);
    expect(result.consoleTail).toMatch(/failed to start Boot\d+ "EFI Internal Shell".*: Security Violation/);
  }, 180_000);

  test('Secure Boot runs q35 with SMM and a secure flash, from a fresh copy of the enrolled variable store', async () => {
    const args = await qemuArgs(request({ firmware: 'efi', secureBoot: true, machineType: 'pc-q35' }), 'tcg', ws.dir);
    expect(args[args.indexOf('-machine') + 1]).toBe('q35,accel=tcg,graphics=off,smm=on');
    expect(args).toEqual(expect.arrayContaining(['-global', 'driver=cfi.pflash01,property=secure,value=on']));
    const flash = args.filter((a) => a.startsWith('if=pflash'));
    expect(flash).toEqual(['if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.ms.fd', `if=pflash,format=raw,unit=1,file=${ws.dir}/OVMF_VARS.fd`]);
    const plain = await qemuArgs(request({ firmware: 'efi', machineType: 'pc-i440fx' }), 'tcg', ws.dir);
    expect(plain.filter((a) => a.startsWith('if=pflash'))[0]).toBe('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(plain).not.toContain('driver=cfi.pflash01,property=secure,value=on');
    await expect(qemuArgs(request({ firmware: 'bios', secureBoot: true }), 'tcg', ws.dir)).rejects.toThrow('boot check: Secure Boot needs UEFI firmware');
  });

  test('every drive is opened with snapshot=on, so the check never writes to the volumes', async () => {
    const args = await qemuArgs(request({ disks: [{ path: '/v/a', format: 'qcow2' }, { path: '/v/b', format: 'raw' }] }), 'tcg', ws.dir);
    const drives = args.filter((_, i) => args[i - 1] === '-drive');
    expect(drives).toEqual(['file=/v/a,format=qcow2,if=none,id=disk0,snapshot=on', 'file=/v/b,format=raw,if=none,id=disk1,snapshot=on']);
    expect(args).toEqual(expect.arrayContaining(['-machine', 'pc,accel=tcg,graphics=off', '-serial', 'stdio', '-nodefaults', '-no-reboot']));
    // The guest gets a NIC but no way out.
    expect(args).toEqual(expect.arrayContaining(['-netdev', 'user,id=net0,restrict=on', '-device', 'virtio-net-pci,netdev=net0']));
  });

  test.each([
    ['virtio', 'pc-i440fx', ['virtio-blk-pci,drive=disk0,bootindex=1']],
    ['scsi', 'pc-q35', ['virtio-scsi-pci,id=scsi0', 'scsi-hd,drive=disk0,bus=scsi0.0,bootindex=1']],
    ['sata', 'pc-i440fx', ['ahci,id=ahci0', 'ide-hd,drive=disk0,bus=ahci0.0,bootindex=1']],
    ['sata', 'pc-q35', ['ide-hd,drive=disk0,bus=ide.0,bootindex=1']],
    ['ide', 'pc-i440fx', ['ide-hd,drive=disk0,bus=ide.0,unit=0,bootindex=1']],
  ] as const)('%s bus on %s: the devices the instance would have', async (diskBus, machineType, devices) => {
    const args = await qemuArgs(request({ diskBus, machineType, nicModel: diskBus === 'sata' || diskBus === 'ide' ? 'e1000' : 'virtio' }), 'tcg', ws.dir);
    const shown = args.filter((_, i) => args[i - 1] === '-device' && !/net/.test(args[i]));
    expect(shown).toEqual(devices);
    expect(args[args.indexOf('-machine') + 1]).toBe(`${machineType === 'pc-q35' ? 'q35' : 'pc'},accel=tcg,graphics=off`);
  });
});
