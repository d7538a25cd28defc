import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExportDiskProgress } from '../../activities';
import { readWorkflowRecord } from '../../api/workflow-history';
import type { ColdMigrationInput, WarmMigrationInput } from '../../shared/migration-input';
import { sha256File } from '../../tools/disk-image';
import type { ColdMigrationResult } from '../../workflows/cold-migration';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { cutoverUpdate } from '../../workflows/warm-migration-state';
import { startGuestWriter } from '../harness/guest-writer';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { createLabProject, resourcesOfMigration, type LabProject } from '../harness/openstack-lab';
import { liveDiskFile, waitForWarmState } from '../harness/warm-migration';
import { spawnWorker, type WorkerProcess } from '../harness/worker-process';
import { leadingSha } from './volume-bytes';

const MiB = 1024 * 1024;

describe('writing into Cinder volumes: warm syncs, and a worker killed mid-copy', () => {
  let env: MigrationEnv;
  let p: LabProject;
  const workers: WorkerProcess[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-sync-'));

  beforeAll(async () => {
    p = await createLabProject('sync', dir);
    env = await createMigrationEnv(
      'os-sync',
      {
        vms: [
          { name: 'warm01', guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 512, powerState: 'poweredOn', disks: [{ capacityMiB: 24 }], nics: [] },
          { name: 'crash01', guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 512, powerState: 'poweredOff', disks: [{ capacityMiB: 256 }], nics: [] },
          { name: 'cancel01', guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 512, powerState: 'poweredOn', disks: [{ capacityMiB: 256 }, { capacityMiB: 64 }], nics: [] },
        ],
      },
      {
        diskImages: { warm01: 24 * MiB, crash01: 256 * MiB, cancel01: 256 * MiB },
        targets: { lab: p.targetConfig() },
        defaultTarget: 'lab',
        // Slow enough (256 Mbit/s) to kill the worker mid-disk; the warm disk is small.
        filters: [{ name: 'rate', params: { rate: `${256 * 1000 * 1000}` } }],
      },
    );
    await env.startWorker('workflows');
  }, 10 * 60_000);

  afterAll(async () => {
    for (const w of workers) await w.kill();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const target = () => ({ name: 'lab', project: p.projectName, flavor: 'm1.tiny', volumeType: p.lab.volumeType, availabilityZone: p.lab.zones.fake, networks: [] });

  it('a worker SIGKILLed mid-copy into a Cinder volume is replaced; the copy resumes into the same volume, byte for byte', async () => {
    const first = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue });
    workers.push(first);
    const input: ColdMigrationInput = { migrationId: `mig-os-crash-${Date.now().toString(36)}`, sourceId: 'sim', vm: { name: 'crash01' }, target: target(), guest: { convert: 'skip' } };
    const handle = await env.client.workflow.start('coldMigration', { workflowId: input.migrationId, taskQueue: env.taskQueue, args: [input, { heartbeatTimeoutSeconds: 4 }] });

    let killedAt: ExportDiskProgress | undefined;
    const deadline = Date.now() + 180_000;
    while (!killedAt) {
      if (Date.now() > deadline) throw new Error(`no exportDisk heartbeat; worker output:\n${first.output()}`);
      const rec = await readWorkflowRecord(env.client, input.migrationId);
      const hb = rec.activities.find((a) => a.type === 'exportDisk')?.pending?.heartbeat as ExportDiskProgress | undefined;
      if (hb && hb.bytesDone >= 32 * MiB && hb.bytesDone < 200 * MiB) {
        killedAt = hb;
        await first.kill('SIGKILL');
      } else await new Promise((r) => setTimeout(r, 200));
    }
    workers.push(spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue }));
    const result = (await handle.result()) as ColdMigrationResult;
    expect(result.disks[0].attempt).toBeGreaterThanOrEqual(2);
    expect(result.disks[0].resumedFrom).toBeGreaterThanOrEqual(killedAt.bytesDone);

    // One volume for the disk (the retry found its volume by owner, and the host attachment the dead worker left),
    // holding exactly the source's bytes.
    const made = await resourcesOfMigration(p, input.migrationId);
    expect(made.volumes).toHaveLength(1);
    expect(made.volumes[0].id).toBe(result.disks[0].volume.id);
    expect(made.volumes[0].attachments.map((a: { server_id: string }) => a.server_id)).toEqual([result.instance.id]);
    const bytes = await leadingSha(path.join(p.lab.shareExportDir, `volume-${made.volumes[0].id}`), 256 * MiB);
    expect(bytes).toEqual({ sha: await sha256File(env.images.crash01), tailZero: true });
  }, 400_000);

  it('warm: syncs write into the same Cinder volume while the guest writes; cutover creates the server; byte-identical', async () => {
    workers.push(spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue }));
    const id = `mig-os-warm-${Date.now().toString(36)}`;
    const input: WarmMigrationInput = { migrationId: id, sourceId: 'sim', vm: { name: 'warm01' }, target: target(), warm: { syncIntervalSeconds: 1 }, guest: { convert: 'skip' } };
    const handle = await env.client.workflow.start('warmMigration', { workflowId: id, taskQueue: env.taskQueue, args: [input] });
    await waitForWarmState(env, id, (s) => s.stage === 'Ready', 180_000);
    const writer = startGuestWriter(liveDiskFile(env, 0), 24 * MiB, 7, { burst: 3, pauseMs: 50, maxLength: 64 * 1024 });
    let volumeIds: string[];
    try {
      const state = await waitForWarmState(env, id, (s) => s.totals!.syncs >= 3, 180_000);
      volumeIds = state.disks!.map((d) => d.volume!.id);
    } finally {
      await writer.stop();
    }
    await handle.executeUpdate(cutoverUpdate, { args: [{ actor: 'os-test' }] });
    const result = (await handle.result()) as WarmMigrationResult;
    expect(result.totals.failedSyncs).toBe(0);
    expect(result.instance).toMatchObject({ target: 'lab', project: p.projectName, status: 'SHUTOFF' });

    const made = await resourcesOfMigration(p, id);
    expect(made.volumes.map((v) => v.id)).toEqual(volumeIds);
    expect(made.servers.map((s) => s.id)).toEqual([result.instance.id]);
    const bytes = await leadingSha(path.join(p.lab.shareExportDir, `volume-${volumeIds[0]}`), 24 * MiB);
    expect(bytes).toEqual({ sha: await sha256File(liveDiskFile(env, 0)), tailZero: true });
  }, 400_000);

  it('a cancel mid-copy powers the source back on and leaves nothing in the cloud', async () => {
    workers.push(spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue }));
    const input: ColdMigrationInput = { migrationId: `mig-os-cancel-${Date.now().toString(36)}`, sourceId: 'sim', vm: { name: 'cancel01' }, target: target(), guest: { convert: 'skip' } };
    const handle = await env.client.workflow.start('coldMigration', { workflowId: input.migrationId, taskQueue: env.taskQueue, args: [input] });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const rec = await readWorkflowRecord(env.client, input.migrationId);
      const beats = rec.activities.filter((a) => a.type === 'exportDisk').map((a) => a.pending?.heartbeat as ExportDiskProgress | undefined);
      if (beats.some((hb) => hb && hb.bytesDone >= 16 * MiB)) break;
      if (Date.now() > deadline) throw new Error('the copy never made progress');
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await resourcesOfMigration(p, input.migrationId)).volumes.length).toBeGreaterThanOrEqual(1);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(await env.powerState('cancel01')).toBe('poweredOn');
    expect(await resourcesOfMigration(p, input.migrationId)).toEqual({ volumes: [], ports: [], servers: [], floatingIps: [] });
  }, 300_000);
});
