/**
 * Interop tests of the vim25 client against the real simulator (tools/vcsim):
 * every assertion is about what the simulator actually answered.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startSimulator, type SimSpec, type Simulator } from '../../tools/vcsim/launch';
import { VimClient } from '../../vsphere/vim-client';
import { InvalidLoginError, VimConnectionError, VimFaultError, VmNotFoundError } from '../../vsphere/vim-faults';

const PASSWORD = 'S3cret&<pw>"';
const FIXED_MAC = '00:50:56:aa:bb:cc';
const PAGE_VMS = 23;

const spec: SimSpec = {
  vms: [
    {
      name: 'demo-vm',
      guestId: 'debian11_64Guest',
      firmware: 'efi',
      secureBoot: true,
      numCPUs: 2,
      memoryMB: 2048,
      powerState: 'poweredOn',
      disks: [{ capacityMiB: 64 }, { capacityMiB: 16 }],
      nics: [{ network: 'VM Network' }, { network: 'VM Network', adapterType: 'e1000', macAddress: FIXED_MAC }],
    },
    { name: 'off-vm', guestId: 'windows9_64Guest', firmware: 'bios', numCPUs: 1, memoryMB: 512, powerState: 'poweredOff', disks: [{ capacityMiB: 8, thick: true }], nics: [{ network: 'DC0_DVPG0', adapterType: 'e1000e' }] },
    ...Array.from({ length: PAGE_VMS }, (_, i) => ({ name: `page-vm-${String(i).padStart(2, '0')}`, powerState: 'poweredOff' as const })),
  ],
};

let sim: Simulator;
let client: VimClient;
let tmp: string;

const login = (password = PASSWORD) => VimClient.login({ url: sim.url, username: 'migrator', password, insecure: true });

/** GET with a Range header, with the session cookie as the data plane sends it. */
function rangeGet(url: string, start: number, end: number, cookie: string): Promise<{ status: number; body: Buffer; contentRange?: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false, headers: { Range: `bytes=${start}-${end}`, Cookie: `vmware_soap_session=${cookie}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), contentRange: res.headers['content-range'] }));
      })
      .on('error', reject);
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'vsphere-test-'));
  sim = await startSimulator({ spec, username: 'migrator', password: PASSWORD });
  client = await login();
});

afterAll(async () => {
  await client?.logout();
  await sim?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('session', () => {
  test('wrong password → InvalidLoginError, not retryable, no secret in the message', async () => {
    const err = await login('wrong-password').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidLoginError);
    expect(err).toBeInstanceOf(VimFaultError);
    const fault = err as InvalidLoginError;
    expect(fault.faultType).toBe('InvalidLogin');
    expect(fault.retryable).toBe(false);
    expect(fault.message).not.toContain('wrong-password');
    expect(JSON.stringify(fault)).not.toContain('wrong-password');
  });

  test('right password → session cookie; logout ends the session', async () => {
    const c = await login();
    expect(c.sessionCookie).toMatch(/\S{8,}/);
    expect(c.serviceContent.apiType).toBe('VirtualCenter');
    const vm = await c.findVm({ name: 'demo-vm' });
    await c.logout();
    expect(c.sessionCookie).toBe('');
    await c.logout(); // idempotent
    // Without a session, methods other than Login/RetrieveServiceContent/RetrieveProperties are refused.
    const err = await c.findVm({ name: 'demo-vm' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VimFaultError);
    expect((err as VimFaultError).faultType).toBe('NotAuthenticated');
    expect((err as VimFaultError).retryable).toBe(true); // a new attempt logs in again
    await expect(c.powerOff(vm)).rejects.toMatchObject({ faultType: 'NotAuthenticated' });
  });

  test('unreachable endpoint → retryable VimConnectionError naming the URL', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const url = `https://127.0.0.1:${port}/sdk`;
    const err = await VimClient.login({ url, username: 'u', password: PASSWORD, insecure: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VimConnectionError);
    expect((err as VimConnectionError).retryable).toBe(true);
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect((err as Error).message).not.toContain(PASSWORD);
  });

  test('self-signed certificate without insecure → non-retryable error with a hint', async () => {
    const err = await VimClient.login({ url: sim.url, username: 'migrator', password: PASSWORD }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VimConnectionError);
    expect((err as VimConnectionError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/insecure/);
  });
});

describe('finding VMs', () => {
  test('by name and by moref', async () => {
    const byName = await client.findVm({ name: 'demo-vm' });
    const expected = sim.vms.find((v) => v.name === 'demo-vm')!.moref;
    expect(byName).toEqual({ type: 'VirtualMachine', value: expected });
    expect(await client.findVm({ moref: expected })).toEqual(byName);
  });

  test('unknown name → VmNotFoundError naming the VM', async () => {
    const err = await client.findVm({ name: 'no-such-vm' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmNotFoundError);
    expect((err as VmNotFoundError).retryable).toBe(false);
    expect((err as Error).message).toContain('no-such-vm');
  });

  test('unknown moref → VmNotFoundError naming the moref', async () => {
    const err = await client.findVm({ moref: 'vm-999999' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmNotFoundError);
    expect((err as Error).message).toContain('vm-999999');
  });

  test('paging: small maxObjects still returns every VM', async () => {
    // Observe (not replace) the SOAP calls the client makes.
    const calls: string[] = [];
    const real = client.call.bind(client);
    const spy = jest.spyOn(client, 'call').mockImplementation((method: string, body: string) => {
      calls.push(method);
      return real(method, body);
    });
    try {
      const vms = await client.listVms({ maxObjects: 4 });
      const names = vms.map((v) => v.name);
      for (const v of spec.vms) expect(names).toContain(v.name);
      expect(new Set(names).size).toBe(names.length); // no page returned twice
      expect(vms.length).toBeGreaterThanOrEqual(spec.vms.length);
      // really paged: ceil(n/4) pages, i.e. n/4 - 1 continuations at least
      expect(calls.filter((m) => m === 'ContinueRetrievePropertiesEx').length).toBeGreaterThanOrEqual(Math.ceil(vms.length / 4) - 1);
      expect(calls).toContain('DestroyView');
    } finally {
      spy.mockRestore();
    }
  });
});

describe('hardware', () => {
  test('demo-vm matches its spec', async () => {
    const simVm = sim.vms.find((v) => v.name === 'demo-vm')!;
    const hw = await client.getVmHardware(await client.findVm({ name: 'demo-vm' }));
    expect(hw).toMatchObject({
      moref: { type: 'VirtualMachine', value: simVm.moref },
      name: 'demo-vm',
      guestId: 'debian11_64Guest',
      guestFamily: 'linuxGuest',
      firmware: 'efi',
      secureBoot: true,
      numCPU: 2,
      memoryMB: 2048,
      powerState: 'poweredOn',
      datacenter: 'DC0',
      datacenterPath: 'DC0',
      changeTrackingEnabled: false,
    });
    expect(hw.instanceUuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(hw.disks).toEqual([
      expect.objectContaining({
        key: 2000, label: 'Hard disk 1', capacityBytes: 64 * 2 ** 20, datastore: 'LocalDS_0',
        fileName: '[LocalDS_0] demo-vm/demo-vm.vmdk', flatFileName: '[LocalDS_0] demo-vm/demo-vm-flat.vmdk',
        thinProvisioned: true, controllerKey: 1000, unitNumber: 0,
      }),
      expect.objectContaining({
        key: 2001, label: 'Hard disk 2', capacityBytes: 16 * 2 ** 20, datastore: 'LocalDS_0',
        fileName: '[LocalDS_0] demo-vm/demo-vm_1.vmdk', flatFileName: '[LocalDS_0] demo-vm/demo-vm_1-flat.vmdk',
        controllerKey: 1000, unitNumber: 1,
      }),
    ]);
    expect(hw.disks.map((d) => d.key)).toEqual(simVm.disks.map((d) => d.key));
    expect(hw.nics).toEqual([
      { key: 4000, label: 'Network adapter 1', macAddress: simVm.nics[0].macAddress, network: 'VM Network', adapterType: 'VirtualVmxnet3' },
      { key: 4001, label: 'Network adapter 2', macAddress: FIXED_MAC, network: 'VM Network', adapterType: 'VirtualE1000' },
    ]);
    expect(hw.nics[0].macAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  test('off-vm: bios, windows, thick disk, NIC on a distributed port group', async () => {
    const hw = await client.getVmHardware(await client.findVm({ name: 'off-vm' }));
    expect(hw).toMatchObject({ firmware: 'bios', secureBoot: false, guestId: 'windows9_64Guest', guestFamily: 'windowsGuest', numCPU: 1, memoryMB: 512, powerState: 'poweredOff' });
    // the port group's name is looked up from its key
    expect(hw.nics).toEqual([expect.objectContaining({ key: 4000, network: 'DC0_DVPG0', adapterType: 'VirtualE1000e' })]);
    expect(hw.disks).toHaveLength(1);
    expect(hw.disks[0]).toMatchObject({ capacityBytes: 8 * 2 ** 20, thinProvisioned: false, fileName: '[LocalDS_0] off-vm/off-vm.vmdk' });
  });
});

describe('power', () => {
  test('powerOff → poweredOff; again → InvalidPowerState, not retryable', async () => {
    const vm = await client.findVm({ name: 'demo-vm' });
    expect(await client.getPowerState(vm)).toBe('poweredOn');
    await client.powerOff(vm, { timeoutMs: 30_000 });
    expect(await client.getPowerState(vm)).toBe('poweredOff');
    const err = await client.powerOff(vm).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VimFaultError);
    expect((err as VimFaultError).faultType).toBe('InvalidPowerState');
    expect((err as VimFaultError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/task/);
  });

  test("vCenter's events tell whether a VM was powered on since a time", async () => {
    const vm = await client.findVm({ name: 'page-vm-00' });
    // The simulator's clock is the same host's; a margin keeps the boundary out of the assertion.
    const before = new Date(Date.now() - 1000).toISOString();
    expect(await client.poweredOnSince(vm, before)).toBeUndefined();
    await client.powerOn(vm, { timeoutMs: 30_000 });
    await client.powerOff(vm, { timeoutMs: 30_000 });
    const on = await client.poweredOnSince(vm, before);
    expect(on).toBeDefined();
    expect(Date.parse(on!)).toBeGreaterThanOrEqual(Date.parse(before));
    // Off again now, and nothing since: the power history, not the power state, is what answers.
    expect(await client.getPowerState(vm)).toBe('poweredOff');
    await new Promise((r) => setTimeout(r, 1100));
    expect(await client.poweredOnSince(vm, new Date().toISOString())).toBeUndefined();
    // Another VM's power-on is not this one's.
    expect(await client.poweredOnSince(await client.findVm({ name: 'page-vm-01' }), before)).toBeUndefined();
  });

  test('powerOff of a vanished VM → VmNotFoundError', async () => {
    const err = await client.powerOff({ type: 'VirtualMachine', value: 'vm-424242' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmNotFoundError);
  });
});

describe('datastore data plane', () => {
  test('uploaded image reads back through ranged GETs of datastoreFileUrl', async () => {
    const image = randomBytes(3 * 2 ** 20 + 12345);
    const file = path.join(tmp, 'image.raw');
    await writeFile(file, image);
    await sim.uploadDiskImage('demo-vm', 1, file);

    const hw = await client.getVmHardware(await client.findVm({ name: 'demo-vm' }));
    const disk = hw.disks[1];
    const url = client.datastoreFileUrl(disk.flatFileName, hw.datacenter);
    expect(url).toBe(sim.datastoreUrl('demo-vm/demo-vm_1-flat.vmdk'));

    const start = 2 ** 20 + 7;
    const end = 3 * 2 ** 20 + 99;
    const res = await rangeGet(url, start, end, client.sessionCookie);
    expect(res.status).toBe(206);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(res.body)).toBe(sha(image.subarray(start, end + 1)));
    // The flat file keeps the disk's capacity: past the image it reads as zeros.
    expect(res.contentRange).toBe(`bytes ${start}-${end}/${disk.capacityBytes}`);
    const tail = await rangeGet(url, disk.capacityBytes - 4096, disk.capacityBytes - 1, client.sessionCookie);
    expect(tail.body.equals(Buffer.alloc(4096))).toBe(true);
  });

  test('an image larger than the disk is refused', async () => {
    const file = path.join(tmp, 'big.raw');
    await writeFile(file, Buffer.alloc(8 * 2 ** 20 + 1));
    await expect(sim.uploadDiskImage('off-vm', 0, file)).rejects.toThrow(/larger than disk/);
  });
});
