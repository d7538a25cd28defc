/**
 * Cold migrations through a faulty source, end to end (simulator → nbdkit curl plugin → worker → local volume):
 * a disk that cannot be read from an offset on fails the migration non-retryably within minutes, saying where; an
 * nbdkit killed in the middle of the copy is restarted by the export and the copy finishes in the same attempt.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { readWorkflowRecord } from '../../api/workflow-history';
import type { ExportDiskProgress } from '../../activities';
import type { ColdMigrationInput } from '../../shared/migration-input';
import type { ColdMigrationResult } from '../../workflows/cold-migration';
import { sha256File } from '../../tools/disk-image';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import type { SimVmSpec } from '../../tools/vcsim/launch';

const MiB = 1024 * 1024;
const DISK = 256 * MiB;
const run = promisify(execFile);

const vm = (name: string): SimVmSpec => ({ name, guestId: 'debian11_64Guest', firmware: 'bios', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff', disks: [{ capacityMiB: 256 }], nics: [] });

function coldInput(id: string, vmName: string): ColdMigrationInput {
  return {
    migrationId: id,
    sourceId: 'sim',
    vm: { name: vmName },
    target: { project: 'p-faults', flavor: 'm1.small', volumeType: 'standard', networks: [] },
    guest: { convert: 'skip' },
  };
}

/** Every failure in the chain below `err`, outermost first. */
function causes(err: unknown): Array<{ message: string; type?: string; nonRetryable?: boolean }> {
  const out: Array<{ message: string; type?: string; nonRetryable?: boolean }> = [];
  for (let e = err as { message: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) out.push(e as (typeof out)[number]);
  return out;
}

describe('a disk the source cannot read from an offset on', () => {
  let env: MigrationEnv;
  const bad = 40 * MiB;

  beforeAll(async () => {
    // nbdkit's ddrescue filter answers EIO for every read overlapping the map's bad ('-') area.
    const map = path.join(await mkdtemp(path.join(os.tmpdir(), 'vmigrate-ddrescue-')), 'bad-from-40M.map');
    const hex = (n: number) => `0x${n.toString(16)}`;
    await writeFile(map, `# Mapfile\n0x0 + 1\n#  pos size status\n0x0 ${hex(bad)} +\n${hex(bad)} ${hex(DISK - bad)} -\n`);
    // A blank disk: inspection reads only its first sectors, so the copy is what meets the bad area.
    env = await createMigrationEnv('bad-region', { vms: [vm('bad01')] }, { filters: [{ name: 'ddrescue', params: { 'ddrescue-mapfile': map } }] });
    await env.startWorker();
  }, 120_000);
  afterAll(() => env?.close());

  it('fails the migration non-retryably within minutes, naming the disk, the offset and the source message', async () => {
    const input = coldInput('mig-bad-region', 'bad01');
    const started = Date.now();
    const handle = await env.client.workflow.start('coldMigration', { workflowId: input.migrationId, taskQueue: env.taskQueue, args: [input] });
    const err = await handle.result().catch((e: unknown) => e);
    const elapsed = Date.now() - started;

    expect(err).toBeInstanceOf(WorkflowFailedError);
    const root = causes(err).find((c) => c.type === 'SourceUnreadableError');
    expect(root).toBeDefined();
    expect(root!.nonRetryable).toBe(true);
    expect(root!.message).toMatch(/^disk 2000 \(.+\.vmdk\): the source failed the read at offset 41943040 on every try \(5 per attempt\) in 3 attempts that got no further than offset 41943040; the source says: .*Input\/output error/);
    expect(elapsed).toBeLessThan(180_000);

    // Three attempts: the first copied up to the bad offset, the next two made no progress.
    const record = await readWorkflowRecord(env.client, input.migrationId);
    const exportDisk = record.activities.find((a) => a.type === 'exportDisk');
    expect(exportDisk?.attempt).toBe(3);
    process.stdout.write(`bad region: failed after ${(elapsed / 1000).toFixed(1)} s\n`);
  }, 240_000);
});

describe('nbdkit killed in the middle of a copy', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    // ~40 MB/s, so the copy is still running when nbdkit dies.
    env = await createMigrationEnv('nbdkit-killed', { vms: [vm('kill01')] }, { filters: [{ name: 'rate', params: { rate: `${320 * 1000 * 1000}` } }], diskImages: { kill01: DISK } });
    await env.startWorker();
  }, 120_000);
  afterAll(() => env?.close());

  it('is restarted by the export; the copy reconnects and completes in the same attempt, byte-identical', async () => {
    const input = coldInput('mig-nbdkit-killed', 'kill01');
    const handle = await env.client.workflow.start('coldMigration', { workflowId: input.migrationId, taskQueue: env.taskQueue, args: [input] });
    let killedPid: number | undefined;
    const deadline = Date.now() + 90_000;
    while (!killedPid) {
      if (Date.now() > deadline) throw new Error('no exportDisk heartbeat with progress');
      const rec = await readWorkflowRecord(env.client, input.migrationId);
      const hb = rec.activities.find((a) => a.type === 'exportDisk')?.pending?.heartbeat as ExportDiskProgress | undefined;
      if (hb && hb.bytesDone >= 32 * MiB) {
        // The export's nbdkit: the one process serving from this environment's work directory.
        const { stdout } = await run('ps', ['-eo', 'pid=,args=']);
        const lines = stdout.split('\n').filter((l) => l.includes('nbdkit') && l.includes(env.dir) && !l.includes('ps -eo'));
        expect(lines).toHaveLength(1);
        killedPid = Number(lines[0].trim().split(/\s+/)[0]);
        process.kill(killedPid, 'SIGKILL');
      } else await new Promise((r) => setTimeout(r, 200));
    }
    const result = (await handle.result()) as ColdMigrationResult;
    const disk = result.disks[0];
    expect(disk.attempt).toBe(1);
    expect(disk.reconnects).toBeGreaterThanOrEqual(1);
    expect(disk.readRetries).toBeGreaterThan(0);
    expect(disk.verification.match).toBe(true);
    const volume = await env.target.getVolume('p-faults', 'mig-nbdkit-killed-disk0');
    expect(await sha256File(env.target.volumePath(volume!.project, volume!.name))).toBe(await sha256File(env.images.kill01));
  }, 180_000);
});
