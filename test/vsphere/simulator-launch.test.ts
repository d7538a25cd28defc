/** The simulator program (tools/vcsim) and its launcher, as tests and benches use them. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simulatorBinaryPath, startSimulator } from '../../tools/vcsim/launch';
import { VimClient } from '../../vsphere/vim-client';

test('missing binary → error telling to run npm run setup', async () => {
  await expect(startSimulator({ spec: { vms: [] }, binaryPath: '/nonexistent/vcsim' })).rejects.toThrow(/npm run setup/);
});

test('plain http, any credentials, chosen datastore dir with sparse flat files of exact capacity', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vcsim-ds-'));
  const sim = await startSimulator({
    spec: { vms: [{ name: 'vm a', disks: [{ capacityMiB: 2048 }], powerState: 'poweredOff' }] },
    tls: false,
    datastoreDir: dir,
  });
  try {
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sdk$/);
    expect(sim.datastoreDir).toBe(dir);
    const [disk] = sim.vms[0].disks;
    expect(disk).toMatchObject({ key: 2000, fileName: '[LocalDS_0] vm a/vm a.vmdk', flatPath: 'vm a/vm a-flat.vmdk', capacityBytes: 2 ** 31 });
    const st = await stat(path.join(dir, disk.flatPath));
    expect(st.size).toBe(2 ** 31);
    expect(st.blocks * 512).toBeLessThan(1 << 20); // sparse: nothing written
    expect(await readFile(path.join(dir, 'vm a/vm a.vmdk'), 'utf8')).toContain('vm a-flat.vmdk');
    // any non-empty credentials log in when none were set
    const c = await VimClient.login({ url: sim.url, username: sim.username, password: sim.password });
    const hw = await c.getVmHardware(await c.findVm({ name: 'vm a' }));
    expect(c.datastoreFileUrl(hw.disks[0].flatFileName, hw.datacenter)).toBe(sim.datastoreUrl(disk.flatPath));
    await c.logout();
  } finally {
    await sim.stop();
    await sim.stop(); // idempotent
    await rm(dir, { recursive: true, force: true });
  }
});

test('the binary prints one ready line, exits 0 on SIGTERM, and exits when its stdin closes', async () => {
  for (const how of ['SIGTERM', 'stdin'] as const) {
    const child = spawn(simulatorBinaryPath(), ['-listen', '127.0.0.1:0', '-stdin-exit'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const ready = JSON.parse(line.toString().trim()) as { url: string; vms: unknown[] };
    expect(ready.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/sdk$/);
    expect(ready.vms).toEqual([]);
    if (how === 'SIGTERM') child.kill('SIGTERM');
    else child.stdin.end();
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  }
});

test('a bad spec fails fast with the reason', async () => {
  const bad = { vms: [{ name: 'x', disks: [{ capacityMiB: 1, sizeGB: 3 }] }] } as never;
  await expect(startSimulator({ spec: bad })).rejects.toThrow(/unknown field "sizeGB"/);
});
