/**
 * The agent names a Windows guest from its registry: product, edition, version and build from SOFTWARE, the computer
 * and host name of the control set it booted last from SYSTEM. The disks are NTFS volumes made with mkntfs and
 * ntfs-3g holding hives written by hivexregedit; the agent reads them with ntfs-3g's ntfsls and ntfscat, as in its ISO.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { agentMachinePlan } from '../../source/agent/agent-machine-plan';
import { defaultAgentIsoCacheDir, ensureAgentIsoParts } from '../../source/agent/agent-iso';
import { discoveredMachineSchema } from '../../source/agent/discovered-machine';
import { sha256File } from '../../tools/disk-image';
import { makeWindowsDisk, type WindowsDiskSpec } from '../../tools/windows-disk/windows-disk';

const run = promisify(execFile);
const MiB = 1024 * 1024;

const WINDOWS_11: WindowsDiskSpec = {
  // Windows 11 keeps "Windows 10" in ProductName; only its build (22000 and later) says otherwise.
  productName: 'Windows 10 Pro',
  build: '22631',
  majorVersion: 10,
  minorVersion: 0,
  editionId: 'Professional',
  displayVersion: '23H2',
  installationType: 'Client',
  computerName: 'BÜRO-PC-07',
  hostname: 'Buero-PC-07',
  // Renamed once: the control set it boots now is the second; the first still holds the old name.
  currentControlSet: 2,
  siblingKeys: 600,
};

const SERVER_2022: WindowsDiskSpec = {
  productName: 'Windows Server 2022 Datacenter',
  build: '20348',
  majorVersion: 10,
  minorVersion: 0,
  editionId: 'ServerDatacenter',
  installationType: 'Server',
  computerName: 'WIN-SQL01',
  hostname: 'win-sql01',
};

describe('agent: a Windows guest named from its registry, read from NTFS without mounting it', () => {
  let agent: string;
  let dir: string;

  beforeAll(async () => {
    agent = (await ensureAgentIsoParts(defaultAgentIsoCacheDir())).agent;
    dir = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-windows-discovery-'));
  }, 300_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function discover(disk: string): Promise<Record<string, any>> {
    const { stdout } = await run(agent, ['-discover', '-disk', disk, '-machine-uuid', '5b0c8e2a-1111-4222-8333-444455556666']);
    return JSON.parse(stdout);
  }

  it('Windows 11 (ProductName says 10): its product from the build, the names of the control set it boots', async () => {
    const disk = path.join(dir, 'win11.img');
    await makeWindowsDisk(disk, 32 * MiB, WINDOWS_11, { partitioned: false });
    const before = await sha256File(disk);
    const found = await discover(disk);
    expect(found.guest).toEqual({
      type: 'windows',
      distro: 'windows',
      version: '10.0',
      prettyName: 'Windows 11 Pro',
      productName: 'Windows 11 Pro',
      edition: 'Professional',
      build: '22631',
      displayVersion: '23H2',
      installationType: 'Client',
      computerName: 'BÜRO-PC-07',
      hostname: 'Buero-PC-07',
      name: 'Buero-PC-07',
    });
    // Read, not written: ntfs-3g's tools open the volume read-only.
    expect(await sha256File(disk)).toBe(before);

    // What the agent reports passes the destination's check and becomes the plan's guest.
    const machine = discoveredMachineSchema.parse(found);
    const plan = agentMachinePlan('m-0123456789abcdef0123', machine);
    expect(plan.name).toBe('Buero-PC-07');
    expect(plan.guest).toMatchObject({ family: 'windows', productName: 'Windows 11 Pro', version: '10.0', hostname: 'Buero-PC-07' });
  }, 120_000);

  it('Windows Server 2022: product, edition and server installation as written', async () => {
    const disk = path.join(dir, 'server2022.img');
    await makeWindowsDisk(disk, 32 * MiB, SERVER_2022, { partitioned: false });
    expect((await discover(disk)).guest).toMatchObject({
      type: 'windows',
      productName: 'Windows Server 2022 Datacenter',
      edition: 'ServerDatacenter',
      installationType: 'Server',
      build: '20348',
      computerName: 'WIN-SQL01',
      name: 'win-sql01',
    });
  }, 120_000);

  it('a Windows whose SOFTWARE hive is damaged is still Windows, with a note saying why it is nameless', async () => {
    const disk = path.join(dir, 'damaged.img');
    await makeWindowsDisk(disk, 32 * MiB, SERVER_2022, { partitioned: false });
    // Overwrite the hive's signature where ntfs-3g placed the file: find it through the volume's own tools.
    const { stdout } = await run('ntfscat', ['-f', disk, '/Windows/System32/config/SOFTWARE'], { encoding: 'latin1', maxBuffer: 64 * MiB });
    const image = await open(disk, 'r+');
    const all = Buffer.alloc(32 * MiB);
    await image.read(all, 0, all.length, 0);
    const at = all.indexOf(Buffer.from(stdout.slice(0, 512), 'latin1'));
    expect(at).toBeGreaterThan(0);
    await image.write(Buffer.from('XXXX'), 0, 4, at);
    await image.close();
    const guest = (await discover(disk)).guest;
    expect(guest.type).toBe('windows');
    expect(guest.productName).toBeUndefined();
    expect(guest.notes).toEqual([expect.stringMatching(/^Windows found on .*damaged\.img but its registry could not be read: SOFTWARE: not a registry hive$/)]);
  }, 120_000);

  it('an NTFS data volume without Windows: the guest is unknown, not Windows', async () => {
    const disk = path.join(dir, 'data.img');
    const fh = await open(disk, 'w');
    await fh.truncate(16 * MiB);
    await fh.close();
    await run('mkntfs', ['-q', '-F', '-Q', disk]);
    const guest = (await discover(disk)).guest;
    expect(guest.type).toBe('unknown');
    expect(guest.productName).toBeUndefined();
  }, 120_000);
});
