import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sha256File } from '../../tools/disk-image';
import { coldMigrationStateQuery } from '../../workflows/cold-migration-state';
import { startApi, waitForMigration } from '../harness/api-server';
import { createMigrationEnv, SIM_PASSWORD, type MigrationEnv } from '../harness/migration-env';

const GiB = 1024 * 1024 * 1024;

describe('cold migration through the API, end to end (real Temporal, simulator, nbdkit)', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'cold',
      {
        vms: [
          {
            name: 'web01',
            guestId: 'debian11_64Guest',
            firmware: 'bios',
            numCPUs: 2,
            memoryMB: 2048,
            powerState: 'poweredOn',
            disks: [{ capacityMiB: 1024 }],
            nics: [{ network: 'VM Network' }],
          },
        ],
      },
      // Capped at 100 MB/s (nbdkit's rate filter, bits/s) so the copy lasts long enough to watch its live progress.
      { diskImages: { web01: GiB }, filters: [{ name: 'rate', params: { rate: `${800 * 1000 * 1000}` } }] },
    );
    await env.startWorker();
    api = await startApi(env);
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('ends Completed with the seed events in order, identical bytes, and the source untouched and off', async () => {
    const sourceSha = await sha256File(env.images.web01);
    const flatFile = path.join(env.sim.datastoreDir, env.sim.vms[0].disks[0].flatPath);
    expect(await sha256File(flatFile)).toBe(sourceSha);

    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'web01' },
      target: {
        project: 'proj1',
        flavor: 'm1.medium',
        volumeType: 'standard',
        networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'tenant-net', preserveMac: true }],
      },
    });
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;
    expect(submit.headers.location).toBe(`/migrations/${id}`);

    // Poll like a client would; progress must never go backwards.
    const seenBytes: number[] = [];
    let liveEvents: Array<{ name: string; live?: boolean; data?: any }> = [];
    const status = await waitForMigration(api.http, id, {
      // The Inspect stage boots a libguestfs appliance (about a minute under TCG).
      timeoutMs: 300_000,
      async onPoll(s) {
        seenBytes.push(s.bytesDone);
        if (liveEvents.length === 0 && s.bytesDone > 0 && s.bytesDone < GiB) {
          liveEvents = (await api.http.get(`/migrations/${id}/events`)).data.events.filter((e: { live?: boolean }) => e.live);
        }
      },
    });
    expect(status.status).toBe('COMPLETED');
    expect(status.stage).toBe('Completed');
    expect(seenBytes).toEqual([...seenBytes].sort((a, b) => a - b));
    // While the disk was copying, the API showed partial, live progress from the activity's heartbeats.
    expect(seenBytes.some((b) => b > 0 && b < GiB)).toBe(true);
    expect(liveEvents.map((e) => e.name)).toEqual(['export.progress', 'write.progress']);
    expect(liveEvents[1].data.bytesDone).toBeGreaterThan(0);
    expect(liveEvents[1].data.bytesTotal).toBe(GiB);
    expect(status.disks).toHaveLength(1);
    expect(status.disks[0]).toMatchObject({ capacityBytes: GiB, bytesDone: GiB, state: 'copied' });
    // The local target's volumes are files on the worker's host: the migration kept its volume work there.
    expect(status.workerHost).toBe(os.hostname());
    expect(status.disks[0].verification.match).toBe(true);
    expect(status.disks[0].verification.source).toBe(status.disks[0].verification.target);
    expect(status.instance).toMatchObject({ project: 'proj1', name: 'web01' });
    expect(status.inspection).toEqual({ osFamily: 'linux', guestId: 'debian11_64Guest', firmware: 'bios' });
    // The image holds file systems but no OS: libguestfs finds none, so 'auto' copies it as-is and says why.
    expect(status.guestConversion.converted).toBe(false);
    expect(status.warnings).toEqual(
      expect.arrayContaining([expect.stringMatching(/^guest conversion skipped: libguestfs inspection found no operating system on the disks/)]),
    );

    const events = (await api.http.get(`/migrations/${id}/events`)).data.events as Array<{ name: string; stage: string; live?: boolean }>;
    const names = events.map((e) => e.name);
    const order = ['source.powered_off', 'export.started', 'write.started', 'guest_fixes.started', 'finalize.completed', 'migration.completed'];
    const firstIndex = order.map((n) => names.indexOf(n));
    expect(firstIndex.every((i) => i >= 0)).toBe(true);
    expect(firstIndex).toEqual([...firstIndex].sort((a, b) => a - b));
    // Progress sits between the write starting and the guest fixes.
    for (const n of ['export.progress', 'write.progress']) {
      const i = names.indexOf(n);
      expect(i).toBeGreaterThan(names.indexOf('write.started'));
      expect(i).toBeLessThan(names.indexOf('guest_fixes.started'));
    }
    expect(events.some((e) => e.live)).toBe(false);
    expect(events.find((e) => e.name === 'source.powered_off')!.stage).toBe('Export');
    expect(events.find((e) => e.name === 'write.started')!.stage).toBe('WriteVolume');
    // The Inspect stage's event carries the libguestfs inspection, also in the status.
    const inspected = events.find((e) => e.name === 'inspect.completed') as { stage: string; data: any } | undefined;
    expect(inspected?.stage).toBe('Inspect');
    expect(names.indexOf('inspect.completed')).toBeLessThan(names.indexOf('write.started'));
    expect(inspected!.data).toEqual(expect.objectContaining({ partitionTable: status.guestInspection.partitionTable, encrypted: false }));

    // Target bytes equal the source; the source disk is unchanged and stays powered off.
    const volume = await env.target.getVolume('proj1', `${id}-disk0`);
    expect(volume).toBeDefined();
    expect(await sha256File(env.target.volumePath(volume!.project, volume!.name))).toBe(sourceSha);
    expect(await sha256File(flatFile)).toBe(sourceSha);
    expect(await env.powerState('web01')).toBe('poweredOff');
    const instance = await env.target.getInstance({ project: 'proj1', name: 'web01' });
    expect(instance).toMatchObject({ status: 'SHUTOFF' });

    // The workflow's own `state` query (what the Web UI's Queries tab shows) agrees.
    const state = await env.client.workflow.getHandle(id).query(coldMigrationStateQuery);
    expect(state).toMatchObject({ stage: 'Completed', sourcePowerStateBefore: 'poweredOn', instance: { name: 'web01' } });
    expect(state.disks[0]).toMatchObject({ bytesDone: GiB, volume: `${id}-disk0`, verification: { match: true } });

    // No secret reached the history: inputs, results and failures are all payloads in it.
    const historyText = JSON.stringify(await env.client.workflow.getHandle(id).fetchHistory());
    const decoded = [...historyText.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8')).join('\n');
    expect(decoded).toContain('web01');
    expect(decoded).not.toContain(SIM_PASSWORD);
    expect(decoded).not.toContain('vmware_soap_session');

    // Re-record the replay test's history with VMIGRATE_RECORD_HISTORY=test/replay/histories/<name>.json.
    if (process.env.VMIGRATE_RECORD_HISTORY) {
      const history = await env.client.workflow.getHandle(id).fetchHistory();
      await writeFile(process.env.VMIGRATE_RECORD_HISTORY, JSON.stringify(history, null, 1));
    }
  }, 360_000);
});
