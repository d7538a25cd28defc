import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeDiskImage } from '../../tools/disk-image';
import { VimClient } from '../../vsphere/vim-client';
import { startApi } from '../harness/api-server';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';

const MiB = 1024 * 1024;

describe('cancelling a cold migration mid-copy', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;
  let imageDir: string;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'cancel',
      { vms: [{ name: 'app01', guestId: 'debian11_64Guest', firmware: 'bios', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: 256 }], nics: [] }] },
      { filters: [{ name: 'rate', params: { rate: `${80 * 1000 * 1000}` } }] }, // 10 MB/s: the copy takes ~25 s
    );
    imageDir = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-img-'));
    await makeDiskImage(path.join(imageDir, 'app01.img'), 256 * MiB);
    await env.sim.uploadDiskImage('app01', 0, path.join(imageDir, 'app01.img'));
    await env.startWorker();
    api = await startApi(env);
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
    await rm(imageDir, { recursive: true, force: true });
  });

  it('stops the copy, powers the source back on, and ends Cancelled with migration.cancelled', async () => {
    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'app01' },
      target: { project: 'p-cancel', flavor: 'm1.small', volumeType: 'standard', networks: [] },
    });
    expect(submit.status).toBe(202);
    const id = submit.data.id;

    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = (await api.http.get(`/migrations/${id}`)).data;
      if (s.stage === 'WriteVolume' && s.disks[0].bytesRead > 0) break;
      if (Date.now() > deadline || s.status !== 'RUNNING') throw new Error(`never saw the copy running: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const cancel = await api.http.post(`/migrations/${id}/cancel`);
    expect(cancel.status).toBe(202);

    let status: any;
    for (;;) {
      status = (await api.http.get(`/migrations/${id}`)).data;
      if (status.status !== 'RUNNING') break;
      if (Date.now() > deadline + 30_000) throw new Error('cancel did not finish');
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status.status).toBe('CANCELLED');
    expect(status.stage).toBe('Cancelled');
    expect(status.disks[0].bytesDone).toBeLessThan(256 * MiB);

    const names = (await api.http.get(`/migrations/${id}/events`)).data.events.map((e: { name: string }) => e.name);
    expect(names[0]).toBe('source.powered_off');
    expect(names[names.length - 1]).toBe('migration.cancelled');
    expect(names).not.toContain('migration.completed');

    const vc = await VimClient.login({ url: env.sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
    try {
      expect(await vc.getPowerState(await vc.findVm({ name: 'app01' }))).toBe('poweredOn');
    } finally {
      await vc.logout();
    }
  });
});
