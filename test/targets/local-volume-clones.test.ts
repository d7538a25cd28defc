import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { LocalTargetProvider } from '../../targets/local/local-target-provider';
import type { VolumeRef } from '../../targets/target-provider';
import { sha256File } from '../../tools/disk-image';

const MiB = 1024 * 1024;
let dir: string;
let driver: LocalTargetProvider;
let base: VolumeRef;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-clones-'));
  driver = new LocalTargetProvider({ dataDir: path.join(dir, 'data') });
  base = await driver.createVolume({ project: 'proj', name: 'm1-disk0', owner: own('m1-disk0'), sizeBytes: 64 * MiB, volumeType: 'ssd' });
  const t = await driver.openVolume(base);
  await t.write(0, Buffer.alloc(1024 * 1024, 0x11));
  await t.flush();
  await t.close();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** qemu-io writes through the qcow2 layer, as virt-v2v's qemu does. */
function qemuIo(file: string, command: string): string {
  return execFileSync('qemu-io', ['-f', 'qcow2', '-c', command, file], { encoding: 'utf8' });
}

const own = (disk: string) => ({ migrationId: 'm1', disk });

describe('LocalTargetProvider clones (convert on a copy)', () => {
  test('a clone is a qcow2 overlay over the raw volume; writes to it never reach the volume', async () => {
    const baseFile = driver.volumePath('proj', base.name);
    const before = await sha256File(baseFile);
    const clone = await driver.cloneVolume(base, { name: 'm1-disk0-converted', owner: own('m1-disk0-converted'), metadata: { migrationId: 'm1' } });
    expect(clone).toMatchObject({ target: 'local', project: 'proj', name: 'm1-disk0-converted', sizeBytes: 64 * MiB });
    expect(await driver.volumeStorage(clone)).toEqual({ format: 'qcow2', baseVolume: 'm1-disk0' });
    expect(await driver.findVolume('proj', own('m1-disk0-converted'))).toEqual(clone);

    const att = await driver.attachVolume(clone);
    expect(att).toMatchObject({ path: driver.volumePath('proj', 'm1-disk0-converted'), format: 'qcow2' });
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', att.path], { encoding: 'utf8' }));
    // Relative backing file: the data directory can move.
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB, 'backing-filename': 'm1-disk0', 'backing-filename-format': 'raw' });

    qemuIo(att.path, 'write -P 0xab 4096 8192');
    expect(qemuIo(att.path, 'read -P 0xab 4096 8192')).toMatch(/read 8192\/8192 bytes/);
    expect(qemuIo(att.path, 'read -P 0x11 0 4096')).toMatch(/read 4096\/4096 bytes/); // unchanged bytes come from the base
    await att.detach();
    expect(await sha256File(baseFile)).toBe(before);
    expect((await driver.attachVolume(base)).format).toBe('raw');
  });

  test('cloning is idempotent by name for the same base, and refuses another base or a clone of a clone', async () => {
    const a = await driver.cloneVolume(base, { name: 'c', owner: own('c') });
    expect((await driver.cloneVolume(base, { name: 'c', owner: own('c') })).id).toBe(a.id);
    const other = await driver.createVolume({ project: 'proj', name: 'other', owner: own('other'), sizeBytes: MiB, volumeType: 'ssd' });
    await expect(driver.cloneVolume(other, { name: 'c', owner: own('c') })).rejects.toThrow(/already exists and is not a clone of other/);
    await expect(driver.cloneVolume(a, { name: 'cc', owner: own('cc') })).rejects.toThrow(/is itself a clone; clone its base m1-disk0/);
    await expect(driver.createVolume({ project: 'proj', name: 'c', owner: own('c'), sizeBytes: 64 * MiB, volumeType: 'ssd' })).rejects.toThrow(/already exists as a clone of m1-disk0/);
  });

  test('a clone cannot be opened as raw bytes, and its base cannot be deleted while it exists', async () => {
    const clone = await driver.cloneVolume(base, { name: 'c', owner: own('c') });
    await expect(driver.openVolume(clone)).rejects.toThrow(/is a qcow2 clone; attach it/);
    await expect(driver.deleteVolume(base)).rejects.toThrow(/is the base of clone\(s\) c; delete them first/);
    await driver.deleteVolume(clone);
    expect(await driver.getVolume('proj', 'c')).toBeUndefined();
    // Discarded and cloned again (a retried conversion): a fresh overlay with none of the old writes.
    const again = await driver.cloneVolume(base, { name: 'c', owner: own('c') });
    expect(again.id).not.toBe(clone.id);
    expect(qemuIo(driver.volumePath('proj', 'c'), 'read -P 0x11 0 4096')).toMatch(/read 4096\/4096 bytes/);
    await driver.deleteVolume(again);
    await driver.deleteVolume(base);
  });

  test('an instance booting from a clone: qcow2 driver and the raw base as backing store in the domain XML; describeInstance gives its spec', async () => {
    const clone = await driver.cloneVolume(base, { name: 'c', owner: own('c') });
    const spec = {
      project: 'proj',
      name: 'vm1',
      migrationId: 'm1',
      flavor: 'm1.small',
      firmware: 'bios' as const,
      machineType: 'pc-i440fx' as const,
      diskBus: 'virtio' as const,
      volumes: [clone],
      nics: [],
    };
    const ref = await driver.createInstance(spec);
    const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (n) => n === 'disk' });
    const disk = parser.parse(readFileSync(driver.instanceXmlPath('proj', 'vm1'), 'utf8')).domain.devices.disk[0];
    expect(disk.driver['@type']).toBe('qcow2');
    expect(disk.source['@file']).toBe(driver.volumePath('proj', 'c'));
    expect(disk.backingStore).toMatchObject({ '@type': 'file', format: { '@type': 'raw' }, source: { '@file': driver.volumePath('proj', 'm1-disk0') } });

    const described = await driver.describeInstance({ project: 'proj', name: 'vm1' });
    expect(described?.instance).toEqual(ref);
    expect(described?.spec).toEqual(spec);
    expect(described?.flavor).toMatchObject({ name: 'm1.small' });
    expect(await driver.describeInstance({ project: 'proj', name: 'nope' })).toBeUndefined();
  });
});
