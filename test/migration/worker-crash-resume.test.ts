import { readWorkflowRecord } from '../../api/workflow-history';
import type { ExportDiskProgress } from '../../activities';
import type { ColdMigrationInput } from '../../shared/migration-input';
import type { ColdMigrationResult } from '../../workflows/cold-migration';
import { sha256File } from '../../tools/disk-image';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { spawnWorker, type WorkerProcess } from '../harness/worker-process';

const MiB = 1024 * 1024;
const DISK = 512 * MiB;

describe('a worker killed with SIGKILL during exportDisk', () => {
  let env: MigrationEnv;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    // nbdkit's rate filter (bits per second) slows the source enough to kill the worker mid-disk.
    env = await createMigrationEnv(
      'crash',
      { vms: [{ name: 'db01', guestId: 'debian11_64Guest', firmware: 'efi', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff', disks: [{ capacityMiB: 512 }], nics: [] }] },
      { filters: [{ name: 'rate', params: { rate: `${320 * 1000 * 1000}` } }], diskImages: { db01: DISK } },
    );
    await env.startWorker('workflows');
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) await w.kill();
    await env?.close();
  });

  it('is replaced, and the copy resumes from the heartbeat watermark instead of starting over', async () => {
    const sourceSha = await sha256File(env.images.db01);
    const first = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue });
    workers.push(first);
    const input: ColdMigrationInput = {
      migrationId: 'mig-crash-1',
      sourceId: 'sim',
      vm: { name: 'db01' },
      target: { project: 'p-crash', flavor: 'm1.small', volumeType: 'standard', networks: [] },
      // This is about the copy resuming; guest inspection and conversion are test/guest-boot/guest-conversion.test.ts's.
      guest: { convert: 'skip' },
    };
    const handle = await env.client.workflow.start('coldMigration', {
      workflowId: input.migrationId,
      taskQueue: env.taskQueue,
      args: [input, { heartbeatTimeoutSeconds: 4 }],
    });

    // Wait until the server holds a heartbeat with durable progress, then kill the worker outright.
    let killedAt: ExportDiskProgress | undefined;
    const deadline = Date.now() + 90_000;
    while (!killedAt) {
      if (Date.now() > deadline) throw new Error(`no exportDisk heartbeat; worker output:\n${first.output()}`);
      const rec = await readWorkflowRecord(env.client, input.migrationId);
      const hb = rec.activities.find((a) => a.type === 'exportDisk')?.pending?.heartbeat as ExportDiskProgress | undefined;
      if (hb && hb.bytesDone >= 64 * MiB && hb.bytesDone < DISK - 64 * MiB) {
        killedAt = hb;
        await first.kill('SIGKILL');
      } else await new Promise((r) => setTimeout(r, 200));
    }

    const second = spawnWorker({ configFile: env.configFile, taskQueue: env.taskQueue });
    workers.push(second);
    const result = (await handle.result()) as ColdMigrationResult;
    const disk = result.disks[0];

    expect(disk.attempt).toBeGreaterThanOrEqual(2);
    // Resumed at (or after, if a later heartbeat reached the server before the kill) the watermark we saw.
    expect(disk.resumedFrom).toBeGreaterThanOrEqual(killedAt.bytesDone);
    expect(disk.resumedFrom).toBeLessThan(DISK);
    // The replacement read only what lay above the watermark: the curl source reports no holes, so exactly that.
    expect(disk.bytesRead).toBe(DISK - disk.resumedFrom);
    expect(disk.verification.match).toBe(true);
    process.stdout.write(
      `crash-resume: killed at watermark ${killedAt.bytesDone / MiB} MiB, resumed from ${disk.resumedFrom / MiB} MiB, ` +
        `re-read ${disk.bytesRead / MiB} MiB of ${DISK / MiB} MiB (attempt ${disk.attempt})\n`,
    );
    const volume = await env.target.getVolume('p-crash', 'mig-crash-1-disk0');
    expect(await sha256File(env.target.volumePath(volume!.project, volume!.name))).toBe(sourceSha);
  });
});
