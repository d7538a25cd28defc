import { XMLParser } from 'fast-xml-parser';
import { ConversionInterruptedError, NoRootFilesystemError } from '../../guest/conversion-errors';
import { runVirtV2vInPlace, sourceDomainXml, type ConversionProgress } from '../../guest/virt-v2v-in-place';
import { ImageWorkspace, MiB, run } from './helpers/disk-image';
import { commandOf, processesMentioning, toolPid } from './helpers/processes';

let ws: ImageWorkspace;
beforeEach(() => {
  ws = new ImageWorkspace();
});
afterEach(() => ws.cleanup());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A partitioned disk with an empty ext4: something to inspect, no OS in it. */
function dataOnlyDisk(): string {
  const image = ws.blank(64 * MiB);
  ws.partition(image, 'label: dos\nstart=2048, type=83\n');
  ws.placeFilesystem(image, MiB, 63 * MiB, (f) => run('mkfs.ext4', ['-q', '-F', f]));
  return image;
}

describe('virt-v2v-in-place runner', () => {
  test('describes the guest as libvirt XML: every disk with its real format, boot disk first, firmware, MACs', () => {
    const xml = sourceDomainXml({
      guestName: 'web<01>',
      memoryMB: 2048,
      vcpus: 2,
      firmware: 'efi',
      disks: [
        { path: '/v/disk0-converted', format: 'qcow2' },
        { path: '/v/disk1', format: 'raw' },
      ],
      nics: [{ mac: '00:50:56:AA:BB:CC' }],
    });
    const d = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (n) => n === 'disk' }).parse(xml).domain;
    expect(xml).toContain('<name>web&#60;01&#62;</name>'); // escaped
    expect(d.os['@firmware']).toBe('efi');
    expect(d.devices.disk.map((x: any) => [x.source['@file'], x.driver['@type'], x.target['@dev']])).toEqual([
      ['/v/disk0-converted', 'qcow2', 'sda'],
      ['/v/disk1', 'raw', 'sdb'],
    ]);
    expect(d.devices.interface.mac['@address']).toBe('00:50:56:aa:bb:cc');
  });

  test('a disk with no OS: the real virt-v2v fails with NoRootFilesystemError, after reporting its stages', async () => {
    const progress: ConversionProgress[] = [];
    const err = await runVirtV2vInPlace({
      disks: [{ path: dataOnlyDisk(), format: 'raw' }],
      guestName: 'data-only',
      firmware: 'bios',
      workDir: ws.dir,
      onProgress: (p) => progress.push(p),
      tickMs: 1000,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NoRootFilesystemError);
    expect(err.toolMessage).toMatch(/^inspection could not detect the source guest.*No root device found in this operating system image\.$/s);
    expect(err.outputTail).toMatch(/virt-v2v-in-place: error: inspection could not detect/);
    const stages = [...new Set(progress.map((p) => p.stage))];
    expect(stages).toEqual(expect.arrayContaining(['Opening the source', 'Inspecting the source']));
    expect(stages.indexOf('Opening the source')).toBeLessThan(stages.indexOf('Inspecting the source'));
    expect(progress.map((p) => p.elapsedMs)).toEqual([...progress.map((p) => p.elapsedMs)].sort((a, b) => a - b));
  }, 600_000);

  test('killed partway (as the e2e retry test does) or cancelled: ConversionInterruptedError, and no process is left', async () => {
    let pid = 0;
    let converter = 0;
    let killedCommand = '';
    const killed = await runVirtV2vInPlace({
      disks: [{ path: dataOnlyDisk(), format: 'raw' }],
      guestName: 'killed',
      firmware: 'bios',
      workDir: ws.dir,
      onSpawn: (p) => (pid = p),
      onProgress: (p) => {
        // "Inspecting the source": its qemu-nbd and appliance are running by then.
        if (p.stage !== 'Inspecting the source' || converter) return;
        converter = toolPid(pid);
        killedCommand = commandOf(converter);
        process.kill(converter, 'SIGKILL');
      },
    }).catch((e) => e);
    expect(killedCommand).toMatch(/^virt-v2v-in-place -i libvirtxml /);
    expect(killed).toBeInstanceOf(ConversionInterruptedError);
    expect(killed.message).toMatch(/killed by SIGKILL/);
    expect(alive(converter)).toBe(false);
    // Nothing it started survives it (qemu-nbd serving the disk, the libguestfs appliance).
    expect(processesMentioning(ws.dir)).toEqual([]);

    const ac = new AbortController();
    const cancelled = await runVirtV2vInPlace({
      disks: [{ path: dataOnlyDisk(), format: 'raw' }],
      guestName: 'cancelled',
      firmware: 'bios',
      workDir: ws.dir,
      signal: ac.signal,
      onSpawn: (p) => (pid = p),
      onProgress: (p) => p.stage === 'Opening the source' && ac.abort(),
    }).catch((e) => e);
    expect(cancelled).toBeInstanceOf(ConversionInterruptedError);
    expect(cancelled.message).toMatch(/stopped \(cancelled\)/);
    expect(alive(pid)).toBe(false);
    expect(processesMentioning(ws.dir)).toEqual([]);
  }, 120_000);
});
