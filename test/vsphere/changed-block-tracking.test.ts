/**
 * Changed Block Tracking against the real simulator (tools/vcsim): change ids, frozen snapshot copies,
 * QueryChangedDiskAreas computed from the disks' bytes, the client's window loop and its checks, injected
 * faults, and ShutdownGuest modes. "Guest writes" go straight into the live -flat.vmdk on the filesystem.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { startSimulator, type SimSpec, type Simulator } from '../../tools/vcsim/launch';
import { ChangedAreasError, queryAllChangedAreas } from '../../vsphere/changed-areas';
import { VimClient, type MoRef } from '../../vsphere/vim-client';
import { VimConnectionError, VimFaultError, VimHttpError } from '../../vsphere/vim-faults';
import { textAt } from '../../vsphere/soap-reply';
import { parseDatastorePath } from '../../vsphere/vm-hardware';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
const WINDOW = 4 * MiB;
/** vSphere's change id shape: "52 2d 7b 8f ac 61 51 cc-77 4c 7b ec 91 50 bb 7b/3". */
const CHANGE_ID = /^([0-9a-f]{2}( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7})\/(\d+)$/;

const spec: SimSpec = {
  cbtBlockSizeKiB: BLOCK / KiB,
  cbtWindowMiB: WINDOW / MiB,
  vms: [
    { name: 'cbt-vm', powerState: 'poweredOn', disks: [{ capacityMiB: 16 }] },
    { name: 'cbt-off-vm', powerState: 'poweredOff', changeTrackingEnabled: true, disks: [{ capacityMiB: 8 }] },
    { name: 'fault-vm', powerState: 'poweredOn', changeTrackingEnabled: true, disks: [{ capacityMiB: 8 }] },
    { name: 'sd-works', powerState: 'poweredOn' },
    { name: 'sd-ignored', powerState: 'poweredOn', guestShutdown: 'ignored' },
    { name: 'sd-tools', powerState: 'poweredOn', guestShutdown: 'tools-unavailable' },
  ],
};

let sim: Simulator;
let client: VimClient;

const livePath = (vmName: string) => path.join(sim.datastoreDir, sim.vms.find((v) => v.name === vmName)!.disks[0].flatPath);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Random bytes none of which is zero, so a write always changes what a hole held (a 1-byte write could be 0x00). */
const dataBytes = (n: number): Buffer => Buffer.from(randomBytes(n).map((b) => b | 1));

/** A guest write: bytes straight into the live -flat.vmdk. */
async function guestWrite(vmName: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(livePath(vmName), 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

/** sha256 of a datastore file read over the /folder URL with the session cookie (the data plane's way). */
function sha256OverHttp(url: string, cookie: string): Promise<{ status: number; sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false, headers: { Cookie: `vmware_soap_session=${cookie}` } }, (res) => {
        const h = createHash('sha256');
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          h.update(c);
          bytes += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: h.digest('hex'), bytes }));
      })
      .on('error', reject);
  });
}

/** The blocks a set of writes touches, as merged byte ranges at block granularity. */
function blockRuns(writes: Array<{ offset: number; length: number }>, capacity: number): Array<{ start: number; length: number }> {
  const blocks = new Set<number>();
  for (const w of writes) for (let b = Math.floor(w.offset / BLOCK); b * BLOCK < w.offset + w.length; b++) blocks.add(b);
  const out: Array<{ start: number; length: number }> = [];
  for (const b of [...blocks].sort((x, y) => x - y)) {
    const start = b * BLOCK;
    const length = Math.min(BLOCK, capacity - start);
    const last = out[out.length - 1];
    if (last && last.start + last.length === start) last.length += length;
    else out.push({ start, length });
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

beforeAll(async () => {
  sim = await startSimulator({ spec });
  client = await VimClient.login({ url: sim.url, username: sim.username, password: sim.password, insecure: true });
});

afterAll(async () => {
  await client?.logout();
  await sim?.stop();
});

describe('CBT on a powered-on VM with snapshots', () => {
  let vm: MoRef;
  let key: number;
  let capacity: number;
  let snap1: MoRef;
  let snap2: MoRef;
  let changeId1: string;
  let frozen1: string; // datastore path of snapshot 1's frozen flat file
  let liveBefore: string; // sha256 of the live disk at snapshot 1

  // Data present before snapshot 1 (the disk is otherwise a hole).
  const initial = [
    { offset: 0, data: dataBytes(100 * KiB) }, // blocks 0-1
    { offset: 5 * MiB, data: dataBytes(BLOCK) }, // block 80
  ];
  // Guest writes between snapshot 1 and snapshot 2.
  const writes = [
    { offset: 3 * BLOCK + 10, data: dataBytes(5) }, // block 3
    { offset: MiB - 100, data: dataBytes(200) }, // blocks 15-16
    { offset: 4 * MiB - 10, data: dataBytes(20) }, // blocks 63-64: across the first window's end
    { offset: 7 * MiB, data: dataBytes(2 * BLOCK) }, // blocks 112-113
    { offset: 16 * MiB - 1, data: dataBytes(1) }, // the last byte: block 255
  ];

  beforeAll(async () => {
    vm = await client.findVm({ name: 'cbt-vm' });
    const hw = await client.getVmHardware(vm);
    key = hw.disks[0].key;
    capacity = hw.disks[0].capacityBytes;
  });

  test('enabling CBT reads back from config.changeTrackingEnabled', async () => {
    expect((await client.getVmHardware(vm)).changeTrackingEnabled).toBe(false);
    await client.setChangeTracking(vm, true);
    expect((await client.getVmHardware(vm)).changeTrackingEnabled).toBe(true);
  });

  test('snapshot 1: a frozen copy with changeId <uuid>/<n>; the live disk carries the same change id', async () => {
    for (const w of initial) await guestWrite('cbt-vm', w.offset, w.data);
    liveBefore = sha(await readFile(livePath('cbt-vm')));
    expect(await client.listSnapshots(vm)).toEqual([]);

    snap1 = await client.createSnapshot(vm, 'sync-1', 'first sync');
    expect(snap1.type).toBe('VirtualMachineSnapshot');
    const [disk] = await client.getSnapshotDisks(snap1);
    expect(disk.key).toBe(key);
    expect(disk.capacityBytes).toBe(capacity);
    expect(disk.changeId).toMatch(CHANGE_ID);
    changeId1 = disk.changeId!;
    expect(disk.fileName).toBe('[LocalDS_0] cbt-vm/cbt-vm-snap-1.vmdk');
    expect(disk.flatFileName).toBe('[LocalDS_0] cbt-vm/cbt-vm-snap-1-flat.vmdk');
    frozen1 = disk.flatFileName;
    expect(existsSync(path.join(sim.datastoreDir, parseDatastorePath(frozen1).path))).toBe(true);

    const live = (await client.getVmHardware(vm)).disks[0];
    expect(live.changeId).toBe(changeId1);
    expect(live.fileName).toBe('[LocalDS_0] cbt-vm/cbt-vm.vmdk'); // the VM keeps writing to its own disk
  });

  test('"*" returns the allocated areas of the sparse snapshot copy, in several windows', async () => {
    const { areas, windows } = await queryAllChangedAreas(client, { vm, snapshot: snap1, deviceKey: key, capacityBytes: capacity, changeId: '*' });
    expect(windows).toBe(capacity / WINDOW);
    expect(areas).toEqual([
      { start: 0, length: 2 * BLOCK },
      { start: 5 * MiB, length: BLOCK },
    ]);
  });

  test('after guest writes, snapshot 2 vs changeId 1 covers exactly the written blocks', async () => {
    for (const w of writes) await guestWrite('cbt-vm', w.offset, w.data);
    // Rewriting bytes that are already there (zeros into a hole) changes no bytes: the simulator compares
    // bytes, so this block is not reported (a real vSphere may report it: an allowed false positive).
    await guestWrite('cbt-vm', 10 * MiB, Buffer.alloc(BLOCK));

    snap2 = await client.createSnapshot(vm, 'sync-2', 'second sync');
    const [disk] = await client.getSnapshotDisks(snap2);
    const m1 = CHANGE_ID.exec(changeId1)!;
    const m2 = CHANGE_ID.exec(disk.changeId ?? '')!;
    expect(m2).not.toBeNull();
    expect(m2[1]).toBe(m1[1]); // same epoch
    expect(Number(m2[4])).toBeGreaterThan(Number(m1[4]));
    expect(disk.flatFileName).toBe('[LocalDS_0] cbt-vm/cbt-vm-snap-2-flat.vmdk');

    const { areas, windows } = await queryAllChangedAreas(client, { vm, snapshot: snap2, deviceKey: key, capacityBytes: capacity, changeId: changeId1 });
    expect(windows).toBe(4);
    const expected = blockRuns(writes.map((w) => ({ offset: w.offset, length: w.data.length })), capacity);
    expect(expected).toEqual([
      { start: 3 * BLOCK, length: BLOCK },
      { start: 15 * BLOCK, length: 2 * BLOCK },
      { start: 63 * BLOCK, length: 2 * BLOCK },
      { start: 112 * BLOCK, length: 2 * BLOCK },
      { start: 255 * BLOCK, length: BLOCK },
    ]);
    expect(areas).toEqual(expected);

    // One raw call: the first window ends at 4 MiB and clips the run of blocks 63-64 there.
    const first = await client.queryChangedDiskAreas(vm, snap2, key, 0, changeId1);
    expect(first).toEqual({ startOffset: 0, length: WINDOW, changedArea: [...expected.slice(0, 2), { start: 63 * BLOCK, length: BLOCK }] });
    // An offset inside a block clips the area to the window.
    const mid = await client.queryChangedDiskAreas(vm, snap2, key, 3 * BLOCK + 100, changeId1);
    expect(mid.startOffset).toBe(3 * BLOCK + 100);
    expect(mid.changedArea[0]).toEqual({ start: 3 * BLOCK + 100, length: BLOCK - 100 });
  });

  test('snapshot 1 still reads the pre-write bytes over the datastore URL; the live disk has changed', async () => {
    const hw = await client.getVmHardware(vm);
    const frozen = await sha256OverHttp(client.datastoreFileUrl(frozen1, hw.datacenterPath), client.sessionCookie);
    expect(frozen.status).toBe(200);
    expect(frozen.bytes).toBe(capacity);
    expect(frozen.sha).toBe(liveBefore);
    const live = sha(await readFile(livePath('cbt-vm')));
    expect(live).not.toBe(liveBefore);
    const [disk2] = await client.getSnapshotDisks(snap2);
    expect((await sha256OverHttp(client.datastoreFileUrl(disk2.flatFileName, hw.datacenterPath), client.sessionCookie)).sha).toBe(live);
  });

  test('listSnapshots flattens the tree', async () => {
    const list = await client.listSnapshots(vm);
    expect(list.map((s) => [s.snapshot.value, s.name, s.description])).toEqual([
      [snap1.value, 'sync-1', 'first sync'],
      [snap2.value, 'sync-2', 'second sync'],
    ]);
    for (const s of list) expect(Number.isNaN(Date.parse(s.createTime))).toBe(false);
  });

  test('faults: startOffset == capacity, an unset snapshot on a powered-on VM, an unknown disk', async () => {
    const atEnd = await rejection(client.queryChangedDiskAreas(vm, snap2, key, capacity, changeId1));
    expect(atEnd).toBeInstanceOf(VimFaultError);
    expect((atEnd as VimFaultError).faultType).toBe('InvalidArgument');
    expect(textAt((atEnd as VimFaultError).detail, 'invalidProperty')).toBe('startOffset');

    const live = await rejection(client.queryChangedDiskAreas(vm, undefined, key, 0, changeId1));
    expect((live as VimFaultError).faultType).toBe('InvalidPowerState');

    const noDisk = await rejection(client.queryChangedDiskAreas(vm, snap2, 2999, 0, changeId1));
    expect((noDisk as VimFaultError).faultType).toBe('InvalidArgument');
  });

  test('removeSnapshot deletes the frozen copy; its change id stays usable', async () => {
    const file = path.join(sim.datastoreDir, parseDatastorePath(frozen1).path);
    await client.removeSnapshot(snap1);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(file.replace(/-flat\.vmdk$/, '.vmdk'))).toBe(false);
    expect((await client.listSnapshots(vm)).map((s) => s.snapshot.value)).toEqual([snap2.value]);
    const { areas } = await queryAllChangedAreas(client, { vm, snapshot: snap2, deviceKey: key, capacityBytes: capacity, changeId: changeId1 });
    expect(areas).toHaveLength(5);
    const gone = await rejection(client.queryChangedDiskAreas(vm, snap1, key, 0, changeId1));
    expect((gone as VimFaultError).faultType).toBe('ManagedObjectNotFound');
  });

  test('CBT off → queries fault; off and on again → a new epoch, old change ids refused', async () => {
    await client.setChangeTracking(vm, false);
    expect((await client.getVmHardware(vm)).changeTrackingEnabled).toBe(false);
    const off = await rejection(client.queryChangedDiskAreas(vm, snap2, key, 0, changeId1));
    expect((off as VimFaultError).faultType).toBe('FileFault');

    await client.setChangeTracking(vm, true);
    const snap3 = await client.createSnapshot(vm, 'sync-3', 'after reset');
    const [disk3] = await client.getSnapshotDisks(snap3);
    expect(CHANGE_ID.exec(disk3.changeId ?? '')?.[1]).not.toBe(CHANGE_ID.exec(changeId1)![1]);

    const stale = await rejection(queryAllChangedAreas(client, { vm, snapshot: snap3, deviceKey: key, capacityBytes: capacity, changeId: changeId1 }));
    expect(stale).toBeInstanceOf(VimFaultError);
    expect((stale as VimFaultError).faultType).toBe('InvalidArgument');
    expect(textAt((stale as VimFaultError).detail, 'invalidProperty')).toBe('changeId');
    expect((stale as VimFaultError).retryable).toBe(false);

    // The new epoch works: "*" on the new snapshot sees everything written so far.
    const all = await queryAllChangedAreas(client, { vm, snapshot: snap3, deviceKey: key, capacityBytes: capacity, changeId: '*' });
    expect(all.areas.length).toBeGreaterThan(0);
    await client.removeSnapshot(snap3);
    await client.removeSnapshot(snap2);
    expect(await client.listSnapshots(vm)).toEqual([]);
  });
});

describe('CBT against the current disk of a powered-off VM', () => {
  test('"*" and a change id compare with the live bytes', async () => {
    const vm = await client.findVm({ name: 'cbt-off-vm' });
    const hw = await client.getVmHardware(vm);
    expect(hw.changeTrackingEnabled).toBe(true); // enabled at creation
    const { key, capacityBytes } = hw.disks[0];
    await guestWrite('cbt-off-vm', 2 * MiB + 1, dataBytes(10));

    const star = await queryAllChangedAreas(client, { vm, snapshot: undefined, deviceKey: key, capacityBytes, changeId: '*' });
    expect(star).toEqual({ areas: [{ start: 2 * MiB, length: BLOCK }], windows: 2 });

    const snap = await client.createSnapshot(vm, 'base', '');
    const [disk] = await client.getSnapshotDisks(snap);
    await guestWrite('cbt-off-vm', 6 * MiB, dataBytes(BLOCK + 1));
    const since = await queryAllChangedAreas(client, { vm, snapshot: undefined, deviceKey: key, capacityBytes, changeId: disk.changeId! });
    expect(since.areas).toEqual([{ start: 6 * MiB, length: 2 * BLOCK }]);
    await client.removeSnapshot(snap);
  });
});

describe('injected faults (simulator test hooks)', () => {
  let vm: MoRef;
  let snap: MoRef;
  let key: number;
  let capacityBytes: number;
  let changeId: string;
  let expected: Array<{ start: number; length: number }>;
  const query = (retries?: number) =>
    queryAllChangedAreas(client, { vm, snapshot: snap, deviceKey: key, capacityBytes, changeId, retries, retryDelayMs: 10 });

  beforeAll(async () => {
    vm = await client.findVm({ name: 'fault-vm' });
    const base = await client.createSnapshot(vm, 'base', '');
    changeId = (await client.getSnapshotDisks(base))[0].changeId!;
    await guestWrite('fault-vm', 5 * MiB, dataBytes(100));
    snap = await client.createSnapshot(vm, 'next', '');
    ({ key, capacityBytes } = (await client.getSnapshotDisks(snap))[0]);
    expected = [{ start: 5 * MiB, length: BLOCK }];
    expect((await query()).areas).toEqual(expected);
  });

  test('zero-length-window → ChangedAreasError no-progress', async () => {
    await sim.injectCbtFault('fault-vm', 'zero-length-window');
    const err = await rejection(query());
    expect(err).toBeInstanceOf(ChangedAreasError);
    expect(err).toMatchObject({ name: 'ChangedAreasError', reason: 'no-progress', retryable: false, offset: 0 });
    expect((await query()).areas).toEqual(expected); // consumed: the next query is normal
  });

  test('area-outside-disk → ChangedAreasError area-outside-disk', async () => {
    await sim.injectCbtFault('fault-vm', 'area-outside-disk');
    const err = await rejection(query());
    expect(err).toBeInstanceOf(ChangedAreasError);
    expect((err as ChangedAreasError).reason).toBe('area-outside-disk');
    expect((err as Error).message).toMatch(/outside the disk/);
  });

  test('query-fault → VimFaultError FileFault, not retryable', async () => {
    await sim.injectCbtFault('fault-vm', 'query-fault');
    const err = await rejection(query());
    expect(err).toBeInstanceOf(VimFaultError);
    expect(err).toMatchObject({ faultType: 'FileFault', retryable: false });
    expect((err as Error).message).toMatch(/change tracking data invalid/);
  });

  test('transient (503, then a dropped connection) → retried at the same offset', async () => {
    await sim.injectCbtFault('fault-vm', 'transient', 2);
    // Other calls are unaffected while the fault is pending.
    expect((await client.getVmHardware(vm)).name).toBe('fault-vm');
    expect(await query(3)).toEqual({ areas: expected, windows: 2 });
  });

  test('transient beyond the retries → surfaced as a retryable transport error', async () => {
    await sim.injectCbtFault('fault-vm', 'transient', 5);
    const first = await rejection(query(0));
    expect(first).toBeInstanceOf(VimHttpError);
    expect(first).toMatchObject({ status: 503, retryable: true });
    const second = await rejection(query(0));
    expect(second).toBeInstanceOf(VimConnectionError);
    expect((second as VimConnectionError).retryable).toBe(true);
    await sim.injectCbtFault('fault-vm', 'transient', 0); // clear the rest
    expect((await query(0)).areas).toEqual(expected);
  });
});

describe('ShutdownGuest modes', () => {
  async function waitForPowerState(vm: MoRef, state: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await client.getPowerState(vm)) === state) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  test('works: the VM powers off; a powered-off VM gets InvalidPowerState', async () => {
    const vm = await client.findVm({ name: 'sd-works' });
    await client.shutdownGuest(vm);
    expect(await waitForPowerState(vm, 'poweredOff', 5000)).toBe(true);
    const err = await rejection(client.shutdownGuest(vm));
    expect((err as VimFaultError).faultType).toBe('InvalidPowerState');
  });

  test('ignored: accepted, the VM stays on until a hard power-off', async () => {
    const vm = await client.findVm({ name: 'sd-ignored' });
    await client.shutdownGuest(vm);
    expect(await waitForPowerState(vm, 'poweredOff', 1000)).toBe(false);
    await client.powerOff(vm);
    expect(await client.getPowerState(vm)).toBe('poweredOff');
  });

  test('tools-unavailable: ToolsUnavailable fault, the VM stays on', async () => {
    const vm = await client.findVm({ name: 'sd-tools' });
    const err = await rejection(client.shutdownGuest(vm));
    expect(err).toBeInstanceOf(VimFaultError);
    expect(err).toMatchObject({ faultType: 'ToolsUnavailable', retryable: false });
    expect(await client.getPowerState(vm)).toBe('poweredOn');
  });
});
