import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConversionInterruptedError, NoRootFilesystemError } from '../../guest/conversion-errors';
import type { Converter } from '../../guest/convert-on-clones';
import { CONVERSION_NOT_CONFIGURED, decideConversion, runGuestFixes, type GuestFixContext } from '../../guest/guest-fixes';
import type { GuestInspection } from '../../guest/libguestfs-inspection';
import type { ConversionRequest } from '../../guest/virt-v2v-in-place';
import { LocalTargetProvider } from '../../targets/local/local-target-provider';
import type { VolumeRef } from '../../targets/target-provider';
import { makeDiskImage, sha256File } from '../../tools/disk-image';

/**
 * The Guest Fixes stage's own logic against the real local target (qcow2 clones, qemu-io writes). The converter here
 * is a stand-in that writes into the clones the way virt-v2v would and then succeeds or fails as each test needs:
 * running virt-v2v itself takes minutes under TCG and is covered by the end-to-end guest test.
 */
const MiB = 1024 * 1024;
let dir: string;
let target: LocalTargetProvider;
let volumes: VolumeRef[];

const linuxGuest: GuestInspection = {
  osFamily: 'linux',
  distro: 'debian',
  version: '12.15',
  firmware: 'bios',
  partitionTable: 'mbr',
  disks: [{ index: 0, partitionTable: 'mbr' }],
  filesystems: [{ device: '/dev/sda1', type: 'ext4' }],
  encrypted: false,
  convertible: true,
  warnings: [],
  applianceMs: 0,
};

/** Writes a marker into every clone (as a converter would), then does what `outcome` says. */
function scriptedConverter(outcome: (attempt: number) => 'ok' | Error, seen: ConversionRequest[]): Converter {
  return async (req) => {
    seen.push(req);
    for (const d of req.disks) execFileSync('qemu-io', ['-f', d.format, '-c', `write -P ${seen.length} 0 4096`, d.path], { stdio: 'ignore' });
    const o = outcome(seen.length);
    if (o instanceof Error) throw o;
    return { durationMs: 5, stages: [{ atSeconds: 0, message: 'Converting Debian 12 to run on KVM' }], warnings: ['a warning'], infos: ['This guest has virtio drivers installed.'], logFile: '/dev/null' };
  };
}

const ctx = (converter: Converter, attempt = 1): GuestFixContext => ({ target, converter, workDir: path.join(dir, 'work'), attempt });
const shas = () => Promise.all(volumes.map((v) => sha256File(target.volumePath('p', v.name))));

describe('Guest Fixes: convert on clones of the copied volumes', () => {
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-guestfix-'));
    target = new LocalTargetProvider({ dataDir: path.join(dir, 'data') });
    volumes = [];
    for (const i of [0, 1]) {
      const v = await target.createVolume({ project: 'p', name: `m1-disk${i}`, sizeBytes: 64 * MiB, volumeType: 'ssd', owner: { migrationId: 'm1', disk: String(2000 + i) } });
      await makeDiskImage(target.volumePath('p', v.name), 64 * MiB, { dataRegions: 2, regionBytes: MiB });
      volumes.push(v);
    }
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('converts clones (boot disk first), reports them as the boot volumes, and leaves the copies as copied', async () => {
    const before = await shas();
    const seen: ConversionRequest[] = [];
    const report = await runGuestFixes(
      { migrationId: 'm1', volumes, guest: linuxGuest, conversion: { convert: 'auto', firmware: 'bios', diskBus: 'virtio', vm: { name: 'web01', memoryMB: 2048, vcpus: 2, nicMacs: ['00:50:56:aa:bb:cc'] } } },
      ctx(scriptedConverter(() => 'ok', seen)),
    );
    expect(report.converted).toBe(true);
    expect(await Promise.all(report.bootVolumes.map(async (v) => [v.name, ...Object.values(await target.volumeStorage(v))]))).toEqual([
      ['m1-disk0-converted', 'qcow2', 'm1-disk0'],
      ['m1-disk1-converted', 'qcow2', 'm1-disk1'],
    ]);
    expect(seen[0].disks.map((d) => [path.basename(d.path), d.format])).toEqual([['m1-disk0-converted', 'qcow2'], ['m1-disk1-converted', 'qcow2']]);
    expect(seen[0]).toMatchObject({ guestName: 'web01', memoryMB: 2048, vcpus: 2, firmware: 'bios', nics: [{ mac: '00:50:56:aa:bb:cc' }] });
    expect(report.conversion).toMatchObject({ tool: 'virt-v2v-in-place', attempt: 1, diskBus: 'virtio', discardedStale: [], warnings: ['a warning'] });
    expect(report.warnings).toEqual(['virt-v2v: a warning']);
    expect(report.volumes.map((v) => v.matchesSource)).toEqual([true, true]);
    expect(await shas()).toEqual(before);
  });

  test('a failed attempt discards its clones; the retry clones afresh from the untouched copies', async () => {
    const before = await shas();
    const seen: ConversionRequest[] = [];
    const converter = scriptedConverter((n) => (n === 1 ? new ConversionInterruptedError('virt-v2v-in-place was stopped (killed by SIGKILL)') : 'ok'), seen);
    const input = { migrationId: 'm1', volumes, guest: linuxGuest, conversion: { convert: 'auto' as const, firmware: 'bios' as const } };
    await expect(runGuestFixes(input, ctx(converter, 1))).rejects.toBeInstanceOf(ConversionInterruptedError);
    expect(await target.getVolume('p', 'm1-disk0-converted')).toBeUndefined();
    expect(await shas()).toEqual(before);

    const report = await runGuestFixes(input, ctx(converter, 2));
    expect(report).toMatchObject({ converted: true, conversion: { attempt: 2 } });
    // The second attempt's clone holds its own writes (pattern 2) over the copy, none of the first attempt's.
    const clone = target.volumePath('p', 'm1-disk0-converted');
    expect(execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 2 0 4096', clone], { encoding: 'utf8' })).toMatch(/read 4096\/4096/);
    expect(await shas()).toEqual(before);
  });

  test('clones left by an attempt that died (worker killed) are discarded and named in the report', async () => {
    await target.cloneVolume(volumes[0], { name: 'm1-disk0-converted', owner: { migrationId: 'm1', disk: `converted-${volumes[0].id}` } });
    const report = await runGuestFixes(
      { migrationId: 'm1', volumes, guest: linuxGuest, conversion: { convert: 'force', firmware: 'bios' } },
      ctx(scriptedConverter(() => 'ok', []), 3),
    );
    expect(report.conversion?.discardedStale).toEqual(['m1-disk0-converted']);
  });

  test("auto copies an unconvertible guest as-is with the reason; force fails with virt-v2v's typed error", async () => {
    const noOs = new NoRootFilesystemError('virt-v2v found no root file system of an operating system on the migrated disks');
    const input = { migrationId: 'm1', volumes, conversion: { convert: 'auto' as const, firmware: 'bios' as const } };
    // No inspection (e.g. a caller that skipped it): auto tries, and virt-v2v's "no OS" becomes a skip with the reason.
    const report = await runGuestFixes(input, ctx(scriptedConverter(() => noOs, [])));
    expect(report).toMatchObject({ converted: false, bootVolumes: volumes });
    expect(report.reason).toMatch(/^guest conversion skipped: virt-v2v found no root file system/);
    expect(report.warnings).toEqual([report.reason]);
    expect(await target.getVolume('p', 'm1-disk0-converted')).toBeUndefined();
    await expect(runGuestFixes({ ...input, conversion: { ...input.conversion, convert: 'force' } }, ctx(scriptedConverter(() => noOs, [])))).rejects.toBe(noOs);
  });

  test('a conversion that could not install VirtIO drivers fails for a VirtIO bus and names the buses that work', async () => {
    const converter: Converter = async () => ({ durationMs: 1, stages: [], warnings: [], infos: ['This guest does not have virtio drivers installed.'], logFile: '' });
    await expect(
      runGuestFixes({ migrationId: 'm1', volumes, guest: linuxGuest, conversion: { convert: 'auto', firmware: 'bios', diskBus: 'virtio' } }, ctx(converter)),
    ).rejects.toThrow(/cannot boot from a virtio disk; migrate it with target.diskBus 'sata' or 'ide'/);
    const onSata = await runGuestFixes({ migrationId: 'm1', volumes, guest: linuxGuest, conversion: { convert: 'auto', firmware: 'bios', diskBus: 'sata' } }, ctx(converter));
    expect(onSata.converted).toBe(true);
  });

  test('without conversion options (workflows started before conversion existed) it only checks the layouts', async () => {
    const seen: ConversionRequest[] = [];
    const report = await runGuestFixes({ volumes }, ctx(scriptedConverter(() => 'ok', seen)));
    expect(report).toMatchObject({ converted: false, reason: CONVERSION_NOT_CONFIGURED, bootVolumes: volumes });
    expect(seen).toEqual([]);
    // A copy whose layout differs from the source's is caught before anything else.
    const wrong = [{ ...report.volumes[0].layout, diskId: '0xdeadbeef' }, report.volumes[1].layout];
    await expect(runGuestFixes({ volumes, sourceLayouts: wrong }, ctx(scriptedConverter(() => 'ok', seen)))).rejects.toThrow(/m1-disk0 does not have the source disk's layout/);
  });
});

describe('what auto, force and skip decide', () => {
  const unconvertible = (warnings: string[], over: Partial<GuestInspection> = {}): GuestInspection => ({ ...linuxGuest, convertible: false, warnings, ...over });
  test.each([
    ['skip, whatever the guest', 'skip', linuxGuest, false, /asked for none \(guest.convert = 'skip'\)/],
    ['force, even an encrypted guest', 'force', unconvertible(['encrypted']), true, undefined],
    ['auto, a convertible guest', 'auto', linuxGuest, true, undefined],
    ['auto without an inspection (virt-v2v decides)', 'auto', undefined, true, undefined],
    [
      'auto, no OS found',
      'auto',
      unconvertible(['libguestfs inspection found no operating system on the disks'], { osFamily: 'unknown' }),
      false,
      /found no operating system.*set guest.convert to 'force'/,
    ],
    [
      'auto, encrypted',
      'auto',
      unconvertible(['encrypted volume(s) /dev/sda2 (crypto_LUKS): …'], { encrypted: true }),
      false,
      /skipped: encrypted volume\(s\) \/dev\/sda2 \(crypto_LUKS\)/,
    ],
  ] as const)('%s', (_label, mode, guest, convert, reason) => {
    const d = decideConversion(mode, guest as GuestInspection | undefined);
    expect(d.convert).toBe(convert);
    if (reason) expect(!d.convert && d.reason).toMatch(reason);
  });
});
