import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { LocalTargetProvider } from '../../targets/local/local-target-provider';
import type { InstanceSpec, VolumeRef } from '../../targets/target-provider';

const GiB = 1024 ** 3;
let dir: string;
let driver: LocalTargetProvider;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-local-'));
  driver = new LocalTargetProvider({ dataDir: path.join(dir, 'data') });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const volumeSpec = (name: string, sizeBytes = GiB) => ({ project: 'proj', name, sizeBytes, volumeType: 'ssd', owner: { migrationId: 'm-1', disk: name }, metadata: { sourceVm: 'web' } });

describe('LocalTargetProvider volumes', () => {
  test('a new volume is a sparse raw file of the requested size with a JSON sidecar', async () => {
    const ref = await driver.createVolume(volumeSpec('web-disk0'));
    const file = path.join(dir, 'data', 'volumes', 'proj', 'web-disk0');
    const st = statSync(file);
    expect(st.size).toBe(GiB);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    expect(ref).toMatchObject({ project: 'proj', name: 'web-disk0', sizeBytes: GiB, volumeType: 'ssd' });
    const sidecar = JSON.parse(readFileSync(path.join(dir, 'data', 'volumes', 'proj', '.meta', 'web-disk0.json'), 'utf8'));
    expect(sidecar).toMatchObject({ id: ref.id, sizeBytes: GiB, volumeType: 'ssd', owner: { migrationId: 'm-1', disk: 'web-disk0' }, metadata: { sourceVm: 'web' }, bootable: false });
  });

  test('createVolume is idempotent by (project, name), also when retried concurrently', async () => {
    const [a, b] = await Promise.all([driver.createVolume(volumeSpec('d')), driver.createVolume(volumeSpec('d'))]);
    expect(b.id).toBe(a.id);
    expect((await driver.createVolume(volumeSpec('d'))).id).toBe(a.id);
    await expect(driver.createVolume(volumeSpec('d', 2 * GiB))).rejects.toThrow(/already exists with size 1073741824 bytes, requested 2147483648/);
    expect((await driver.getVolume('proj', 'd'))?.id).toBe(a.id);
  });

  test('openVolume gives positional read/write with bounds checks', async () => {
    const ref = await driver.createVolume(volumeSpec('io', 8 * 1024 * 1024));
    const t = await driver.openVolume(ref);
    try {
      await t.write(4096, Buffer.from('hello'));
      await t.flush();
      expect((await t.read(4096, 5)).toString()).toBe('hello');
      expect(await t.read(0, 4)).toEqual(Buffer.alloc(4));
      await expect(t.write(8 * 1024 * 1024 - 2, Buffer.from('abc'))).rejects.toThrow(/outside volume file/);
      await expect(t.read(-1, 1)).rejects.toThrow(/outside volume file/);
    } finally {
      await t.close();
    }
  });

  test('delete is idempotent and a stale ref cannot open a recreated volume', async () => {
    const ref = await driver.createVolume(volumeSpec('gone'));
    await driver.deleteVolume(ref);
    await driver.deleteVolume(ref);
    expect(await driver.getVolume('proj', 'gone')).toBeUndefined();
    expect(existsSync(driver.volumePath('proj', 'gone'))).toBe(false);
    const again = await driver.createVolume(volumeSpec('gone'));
    expect(again.id).not.toBe(ref.id);
    await expect(driver.openVolume(ref)).rejects.toThrow(/not .* \(recreated\?\)/);
    await expect(driver.deleteVolume(ref)).rejects.toThrow(/not deleting/);
  });

  test('setVolumeBootable marks the volume and merges metadata', async () => {
    const ref = await driver.createVolume(volumeSpec('boot'));
    const boot = { firmware: 'efi', machineType: 'pc-q35', diskBus: 'virtio', nicModel: 'virtio', osType: 'linux' } as const;
    await driver.setVolumeBootable(ref, boot, { migrationId: 'm-1' });
    const sidecar = JSON.parse(readFileSync(path.join(dir, 'data', 'volumes', 'proj', '.meta', 'boot.json'), 'utf8'));
    expect(sidecar).toMatchObject({ bootable: true, boot, metadata: { migrationId: 'm-1', sourceVm: 'web' } });
  });

  test.each([
    ['../escape', /path separator/],
    ['a/b', /path separator/],
    ['..', /path traversal/],
    ['.', /path traversal/],
    ['nul\0byte', /NUL byte/],
    ['.hidden', /must not start with "."/],
    ['', /non-empty/],
  ])('refuses the name %j', async (name, message) => {
    await expect(driver.createVolume(volumeSpec(name))).rejects.toThrow(message);
    await expect(driver.createVolume({ ...volumeSpec('ok'), project: name })).rejects.toThrow(message);
    await expect(driver.getVolume(name, 'x')).rejects.toThrow(message);
    expect(readdirSync(dir)).toEqual([]); // nothing created anywhere, least of all outside the data dir
  });
});

describe('LocalTargetProvider instances', () => {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => ['disk', 'interface'].includes(name) });
  let boot: VolumeRef;
  let data: VolumeRef;
  beforeEach(async () => {
    boot = await driver.createVolume(volumeSpec('vm1-disk0'));
    data = await driver.createVolume(volumeSpec('vm1-disk1'));
  });
  const spec = (over: Partial<InstanceSpec> = {}): InstanceSpec => ({
    project: 'proj',
    name: 'vm1',
    migrationId: 'm-1',
    flavor: 'm1.medium',
    firmware: 'efi',
    machineType: 'pc-q35',
    diskBus: 'virtio',
    volumes: [boot, data],
    nics: [
      { sourceMac: '00:50:56:AB:CD:EF', network: 'prod-net', preserveMac: true },
      { sourceMac: '00:50:56:00:00:01', network: 'backup-net', preserveMac: false },
    ],
    metadata: { migrationId: 'm-1', sourceVm: 'vm <&> 1' },
    ...over,
  });

  test('writes a record and a libvirt domain XML that says what was asked for', async () => {
    const ref = await driver.createInstance(spec());
    expect(ref).toMatchObject({ project: 'proj', name: 'vm1', status: 'SHUTOFF' });
    expect(JSON.parse(readFileSync(path.join(dir, 'data', 'instances', 'proj', 'vm1.json'), 'utf8')).id).toBe(ref.id);

    const xml = readFileSync(driver.instanceXmlPath('proj', 'vm1'), 'utf8');
    const domain = parser.parse(xml).domain;
    expect(domain['@type']).toBe('kvm');
    expect(domain.uuid).toBe(ref.id);
    expect(domain.vcpu['#text']).toBe(2);
    expect(domain.memory).toEqual({ '#text': 4096, '@unit': 'MiB' });
    expect(domain.os['@firmware']).toBe('efi');
    expect(domain.os.type['@machine']).toBe('q35');
    const disks = domain.devices.disk;
    expect(disks.map((d: any) => d.source['@file'])).toEqual([driver.volumePath('proj', 'vm1-disk0'), driver.volumePath('proj', 'vm1-disk1')]);
    expect(disks.map((d: any) => [d.target['@dev'], d.target['@bus']])).toEqual([['vda', 'virtio'], ['vdb', 'virtio']]);
    expect(disks[0].boot['@order']).toBe('1');
    expect(disks[1].boot).toBeUndefined();
    const nics = domain.devices.interface;
    expect(nics.map((n: any) => n.source['@network'])).toEqual(['prod-net', 'backup-net']);
    expect(nics[0].mac['@address']).toBe('00:50:56:ab:cd:ef');
    expect(nics[1].mac).toBeUndefined();
    expect(xml).toContain('vm &#60;&#38;&#62; 1'); // metadata escaped
  });

  test('bios + i440fx + sata: plain <os>, pc machine, sd* disks, emulated NIC', async () => {
    await driver.createInstance(spec({ firmware: 'bios', machineType: 'pc-i440fx', diskBus: 'sata' }));
    const domain = parser.parse(readFileSync(driver.instanceXmlPath('proj', 'vm1'), 'utf8')).domain;
    expect(domain.os['@firmware']).toBeUndefined();
    expect(domain.os.type['@machine']).toBe('pc');
    expect(domain.devices.disk.map((d: any) => d.target['@dev'])).toEqual(['sda', 'sdb']);
    expect(domain.devices.interface[0].model['@type']).toBe('e1000');
  });

  test('Secure Boot: firmware auto-selection asks for secure-boot with enrolled keys, and SMM is on', async () => {
    await driver.createInstance(spec({ secureBoot: true }));
    const domain = parser.parse(readFileSync(driver.instanceXmlPath('proj', 'vm1'), 'utf8')).domain;
    expect(domain.os['@firmware']).toBe('efi');
    expect(domain.os.firmware.feature).toEqual([
      { '@enabled': 'yes', '@name': 'secure-boot' },
      { '@enabled': 'yes', '@name': 'enrolled-keys' },
    ]);
    expect(domain.features.smm).toEqual({ '@state': 'on' });
    expect((await driver.describeInstance({ project: 'proj', name: 'vm1' }))!.spec).toMatchObject({ firmware: 'efi', secureBoot: true, machineType: 'pc-q35' });
  });

  test('scsi bus adds a virtio-scsi controller', async () => {
    await driver.createInstance(spec({ diskBus: 'scsi' }));
    const domain = parser.parse(readFileSync(driver.instanceXmlPath('proj', 'vm1'), 'utf8')).domain;
    expect(domain.devices.controller['@model']).toBe('virtio-scsi');
  });

  test('createInstance is idempotent, and a conflicting spec under the same name is refused', async () => {
    const a = await driver.createInstance(spec());
    const b = await driver.createInstance(spec({ metadata: { sourceVm: 'vm <&> 1', migrationId: 'm-1' } }));
    expect(b.id).toBe(a.id);
    expect((await driver.getInstance({ project: 'proj', name: 'vm1' }))?.id).toBe(a.id);
    await expect(driver.createInstance(spec({ flavor: 'm1.large' }))).rejects.toThrow(/already exists with a different spec/);
  });

  test('unknown flavors are refused with the list of known ones; a custom catalog replaces the default', async () => {
    await expect(driver.createInstance(spec({ flavor: 'huge' }))).rejects.toThrow(
      'unknown flavor "huge"; known flavors: m1.small, m1.medium, m1.large, m1.xlarge',
    );
    const custom = new LocalTargetProvider({ dataDir: path.join(dir, 'data'), flavors: [{ name: 'tiny', vcpus: 1, ramMB: 512 }] });
    expect(await custom.listFlavors()).toEqual([{ name: 'tiny', vcpus: 1, ramMB: 512 }]);
    await custom.createInstance(spec({ flavor: 'tiny', name: 'small-vm' }));
    const domain = parser.parse(readFileSync(custom.instanceXmlPath('proj', 'small-vm'), 'utf8')).domain;
    expect(domain.memory['#text']).toBe(512);
  });

  test('refuses impossible specs', async () => {
    await expect(driver.createInstance(spec({ diskBus: 'ide' }))).rejects.toThrow(/q35 machine type has no IDE bus/);
    await expect(driver.createInstance(spec({ volumes: [] }))).rejects.toThrow(/at least a boot volume/);
    await expect(
      driver.createInstance(spec({ nics: [{ sourceMac: 'zz:50:56:00:00:01', network: 'n', preserveMac: true }] })),
    ).rejects.toThrow(/invalid MAC/);
    await driver.deleteVolume(data);
    await expect(driver.createInstance(spec())).rejects.toThrow(/vm1-disk1 does not exist/);
    await expect(driver.createInstance(spec({ name: '../x' }))).rejects.toThrow(/path separator/);
    expect(existsSync(path.join(dir, 'data', 'instances', 'proj', 'vm1.json'))).toBe(false);
  });
});
