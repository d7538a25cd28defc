/**
 * Live migration between the two hosts of a libvirt target (tools/libvirt-lab: two libvirtds, each in its own
 * mount, UTS and network namespace, a veth pair between them), through the `liveMigration` workflow: a guest with a
 * NIC and a local disk, counting in memory and on its disk, moves with its disk copied (block migration). After it:
 * it runs on the destination only, its count never went backwards, the time its console was silent is no longer
 * than the downtime QEMU measured (plus the guest's own print interval), and its disk on the destination holds
 * its latest count. Refused (its own host named as destination; a destination whose CPU lacks a feature the guest
 * uses) and aborted (past its convergence limit), it keeps running on its source.
 */
import { randomUUID } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { liveMigration } from '../../workflows/live-migration';
import { vmigrateCacheDir } from '../../tools/test-guest/test-guest-paths';
import { counterDomainXml, ensureCounterGuest, parseCounts } from '../../tools/live-guest/counter-guest';
import { MIGRATION_BRIDGE, startLibvirtPair, type LibvirtPair, type PairHost } from '../../tools/libvirt-lab/libvirt-pair';
import { startApi, type TestApi } from '../harness/api-server';
import { ConsoleWatch, DomainEvents, switchoverGaps } from '../harness/console-watch';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { recordRunHistories } from '../harness/record-histories';
import { until } from '../harness/until';

const virsh = (h: PairHost, ...args: string[]) => execFileSync('virsh', ['-q', '-c', h.uri, ...args], { encoding: 'utf8', stdio: 'pipe' }).trim();


describe('live migration between the hosts of a libvirt target', () => {
  let pair: LibvirtPair;
  /** A second target whose second host has an older CPU: it lacks AES-NI. */
  let mixed: LibvirtPair;
  let env: MigrationEnv;
  let guest: { kernel: string; initrd: string };
  let api: TestApi;

  beforeAll(async () => {
    [pair, guest] = await Promise.all([startLibvirtPair({ cacheRoot: vmigrateCacheDir() }), ensureCounterGuest(path.join(vmigrateCacheDir(), 'live-guest'))]);
    mixed = await startLibvirtPair({ cacheRoot: vmigrateCacheDir(), names: ['kvm-new', 'kvm-old'], secondCpuWithout: ['aes'] });
    env = await createMigrationEnv('libvirt-live', { vms: [] }, {
      targets: {
        kvm: {
          driver: 'libvirt',
          hosts: pair.hosts.map((h) => ({ name: h.hostname, uri: h.uri, migrationAddress: h.address })),
          storagePool: 'default',
          sharedStorage: false,
        },
        mixed: { driver: 'libvirt', hosts: mixed.hosts.map((h) => ({ name: h.hostname, uri: h.uri, migrationAddress: h.address })), storagePool: 'default', sharedStorage: false },
        // The same hosts, where a migration forced past its limit may switch to post-copy.
        'kvm-postcopy': {
          driver: 'libvirt',
          hosts: pair.hosts.map((h) => ({ name: h.hostname, uri: h.uri, migrationAddress: h.address })),
          storagePool: 'default',
          sharedStorage: false,
          liveMigration: { permitPostCopy: true },
        },
      },
    });
    await env.startWorker();
    api = await startApi(env, { users: [{ name: 'operator', projects: ['p-live'], role: 'member' }] });
  }, 300_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
    await pair?.stop();
    await mixed?.stop();
  });

  /** A counter guest defined and started on `host`, its disk in that host's pool; waits for its first counts. */
  async function startCounter(name: string, host: PairHost, extra: { cpuModel?: string; cpuFeatures?: string[]; memoryMiB?: number; dirtyMiB?: number } = {}, on: LibvirtPair = pair) {
    const disk = path.join(host.imagesDir, `${name}.raw`);
    writeFileSync(disk, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '8M', disk]);
    virsh(host, 'pool-refresh', 'default');
    const xmlFile = path.join(on.dir, `${name}.xml`);
    writeFileSync(
      xmlFile,
      counterDomainXml({
        name,
        uuid: randomUUID(),
        memoryMiB: extra.memoryMiB ?? 128,
        kernel: guest.kernel,
        initrd: guest.initrd,
        disk: `/var/lib/libvirt/images/${name}.raw`,
        consoleLog: `/var/log/libvirt/qemu/${name}-console.log`,
        bridge: MIGRATION_BRIDGE,
        mac: '52:54:00:7a:00:01',
        ...(extra.cpuModel ? { cpuModel: extra.cpuModel, cpuFeatures: extra.cpuFeatures ?? [] } : {}),
        ...(extra.dirtyMiB ? { dirtyMiB: extra.dirtyMiB } : {}),
      }),
    );
    virsh(host, 'define', xmlFile);
    virsh(host, 'start', name);
    const consoles = on.hosts.map((h) => ({ host: h.hostname, file: path.join(h.logDir, 'qemu', `${name}-console.log`) }));
    const watch = new ConsoleWatch(consoles);
    watch.start();
    await until('the guest counting', () => (watch.lines.filter((l) => l.text.startsWith('disk ')).length >= 3 ? true : undefined), 120_000);
    return { watch, disk };
  }

  it('moves a running guest with a NIC and a local disk: its counts go on without going back, the silence within the downtime', async () => {
    const [a, b] = pair.hosts;
    const { watch } = await startCounter('counter-1', a);
    const handle = await env.client.workflow.start(liveMigration, {
      taskQueue: env.taskQueue,
      workflowId: `live-libvirt-${randomUUID()}`,
      args: [{ operationId: 'lm-libvirt-1', target: { name: 'kvm' }, serverId: 'counter-1', blockMigration: 'auto', requestedBy: 'admin' }],
    });
    const result = await handle.result();
    await new Promise((r) => setTimeout(r, 1500)); // counts on the destination after it
    watch.stop();
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, handle.workflowId, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'live-migration-libvirt-v1'));

    expect(result.stages.map((s) => s.stage)).toEqual(['Checks', 'Migrating', 'Verify', 'Completed']);
    expect(result).toMatchObject({ mode: 'block', source: a.hostname, destination: b.hostname, record: { status: 'completed', sourceCompute: a.hostname, destCompute: b.hostname } });
    expect(virsh(b, 'domstate', 'counter-1')).toBe('running');
    expect(virsh(b, 'dumpxml', 'counter-1')).toContain("<mac address='52:54:00:7a:00:01'/>");
    expect(() => virsh(a, 'domstate', 'counter-1')).toThrow(/failed to get domain/);

    // Memory: the counts, across both consoles in the order seen, never go back and none is skipped.
    const counted = watch.lines.filter((l) => /^count \d+$/.test(l.text));
    const counts = parseCounts(counted.map((l) => l.text).join('\n')).counts;
    expect(counted.some((l) => l.host === a.hostname) && counted.some((l) => l.host === b.hostname)).toBe(true);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBe(counts[i - 1]! + 1);

    // Time: the console's longest silence is the switchover, within QEMU's downtime plus one print interval.
    const downtime = result.record!.downtimeMs!;
    expect(downtime).toBeGreaterThan(0);
    const { steadyMs, switchoverMs } = switchoverGaps(counted);
    console.log(`[libvirt live] downtime ${downtime} ms, console silent ${switchoverMs} ms at the switchover, longest steady interval ${steadyMs} ms, migration ${result.record!.durationMs} ms, ${result.record!.transferredBytes} bytes`);
    expect(switchoverMs).toBeLessThanOrEqual(downtime + steadyMs + 50);

    // Disk: the destination's copy of the disk holds a count at least the last one written before the move.
    const lastDiskOnSource = Math.max(...watch.lines.filter((l) => l.host === a.hostname && /^disk \d+$/.test(l.text)).map((l) => Number(l.text.slice(5))));
    const onDisk = Number(readFileSync(path.join(b.imagesDir, 'counter-1.raw')).subarray(0, 32).toString('latin1').replace(/\D/g, ''));
    expect(onDisk).toBeGreaterThanOrEqual(lastDiskOnSource);
    virsh(b, 'destroy', 'counter-1');
  }, 600_000);

  it('past its limit, a migration that cannot converge switches to post-copy where the target permits it: the guest goes on on the destination and the copy completes', async () => {
    const [a, b] = pair.hosts;
    const { watch } = await startCounter('counter-pc', a, { dirtyMiB: 8 });
    // 1 MiB/s: slower than the guest dirties its memory, so pre-copy alone would never end.
    virsh(a, 'migrate-setspeed', 'counter-pc', '1');
    const domainEvents = new DomainEvents(pair.hosts.map((h) => ({ host: h.hostname, uri: h.uri })));
    domainEvents.start();
    let result;
    try {
      result = await env.client.workflow.execute(liveMigration, {
        taskQueue: env.taskQueue,
        workflowId: `live-libvirt-${randomUUID()}`,
        args: [{ operationId: `lm-${randomUUID()}`, target: { name: 'kvm-postcopy' }, serverId: 'counter-pc', destination: b.hostname, blockMigration: 'auto', convergence: { limitSeconds: 3, onLimit: 'force-complete' }, requestedBy: 'admin' }],
      });
      await new Promise((r) => setTimeout(r, 1500)); // counts on the destination after it
    } finally {
      watch.stop();
      domainEvents.stop();
    }
    expect(result.record).toMatchObject({ status: 'completed', postCopy: true, sourceCompute: a.hostname, destCompute: b.hostname });
    // libvirt's own account: the guest was resumed on the destination in post-copy, not after a full pre-copy.
    expect(domainEvents.events.filter((e) => e.domain === 'counter-pc').map((e) => `${e.host} ${e.event}`)).toContain(`${b.hostname} Resumed Post-copy`);
    expect(virsh(b, 'domstate', 'counter-pc')).toBe('running');
    expect(() => virsh(a, 'domstate', 'counter-pc')).toThrow(/failed to get domain/);
    const counted = watch.lines.filter((l) => /^count \d+$/.test(l.text));
    const counts = parseCounts(counted.map((l) => l.text).join('\n')).counts;
    expect(counted.some((l) => l.host === b.hostname)).toBe(true);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBe(counts[i - 1]! + 1);
    virsh(b, 'destroy', 'counter-pc');
  }, 300_000);

  it('refuses its own host as destination; aborted at its convergence limit, the guest keeps running on its source', async () => {
    const [a] = pair.hosts;
    const { watch } = await startCounter('counter-2', a, { dirtyMiB: 32, memoryMiB: 192 });
    const run = (extra: Record<string, unknown>) =>
      env.client.workflow
        .execute(liveMigration, {
          taskQueue: env.taskQueue,
          workflowId: `live-libvirt-${randomUUID()}`,
          args: [{ operationId: `lm-${randomUUID()}`, target: { name: 'kvm' }, serverId: 'counter-2', blockMigration: 'auto', requestedBy: 'admin', ...extra }],
        })
        .then(
          () => undefined,
          (err: unknown) => err as WorkflowFailedError,
        );
    const same = await run({ destination: a.hostname });
    expect(same?.cause?.message).toMatch(/server counter-2 cannot be live-migrated: server counter-2 runs on kvm-a already/);
    // A limit of 0 s: the policy aborts at its first look at the running job.
    const aborted = await run({ convergence: { limitSeconds: 0, onLimit: 'abort' } });
    expect(aborted?.cause?.message).toMatch(/the live migration was aborted: it did not complete within 0 s/);
    expect(virsh(a, 'domstate', 'counter-2')).toBe('running');
    const before = watch.lines.length;
    await until('counting on after the abort', () => (watch.lines.slice(before).some((l) => l.host === a.hostname && /^count /.test(l.text)) ? true : undefined), 30_000);
    watch.stop();
    expect(() => virsh(pair.hosts[1], 'domstate', 'counter-2')).toThrow(/failed to get domain/);
    virsh(a, 'destroy', 'counter-2');
  }, 300_000);

  it('a destination whose CPU lacks a feature the guest uses: refused at Checks as a CPU mismatch, the guest running on its source', async () => {
    const [fresh, old] = mixed.hosts;
    // qemu64 with AES-NI required: what a guest started on a newer host's CPU model uses.
    const { watch } = await startCounter('counter-aes', fresh, { cpuModel: 'qemu64', cpuFeatures: ['aes'] }, mixed);
    const failed = await env.client.workflow
      .execute(liveMigration, {
        taskQueue: env.taskQueue,
        workflowId: `live-libvirt-${randomUUID()}`,
        args: [{ operationId: `lm-${randomUUID()}`, target: { name: 'mixed' }, serverId: 'counter-aes', blockMigration: 'auto', requestedBy: 'admin' }],
      })
      .then(
        () => undefined,
        (err: unknown) => err as WorkflowFailedError,
      );
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    const cause = failed!.cause as ApplicationFailure;
    expect(cause.message).toMatch(/server counter-aes cannot be live-migrated: the guest CPU does not match kvm-old \(host kvm-old: .*aes.*\)\. Give the domain a CPU model every host has/);
    // The workflow's failure, over the activity's, over the typed error of the check.
    const types: Array<string | undefined> = [];
    for (let c: Error | undefined = cause; c; c = c.cause as Error | undefined) types.push((c as ApplicationFailure).type ?? c.name);
    expect(types).toEqual(['MigrationFailed', 'ActivityFailure', 'CpuIncompatibleError']);
    // Its own host's CPU is fine: the refusal names only the other.
    expect(virsh(fresh, 'domstate', 'counter-aes')).toBe('running');
    expect(() => virsh(old, 'domstate', 'counter-aes')).toThrow(/failed to get domain/);
    const before = watch.lines.length;
    await until('counting on after the refusal', () => (watch.lines.slice(before).some((l) => l.host === fresh.hostname && /^count /.test(l.text)) ? true : undefined), 30_000);
    watch.stop();
    virsh(fresh, 'destroy', 'counter-aes');
  }, 300_000);

  it('through the API and the CLI: admin only, followed to Completed with its progress and downtime', async () => {
    const [a, b] = pair.hosts;
    const { watch } = await startCounter('counter-3', a);
    watch.stop();
    const refused = await api.as('operator').post('/live-migrations', { target: 'kvm', server: 'counter-3' });
    expect(refused.status).toBe(403);
    expect(refused.data.detail).toMatch(/needs the admin role; you \(operator\) have member/);
    const local = await api.http.post('/live-migrations', { target: 'local', server: 'counter-3' });
    expect([local.status, local.data.detail]).toEqual([422, 'target: local is a local target; live migration needs an OpenStack or a libvirt target']);

    const cli = promisify(execFile);
    const { stdout } = await cli(process.execPath, [path.resolve(__dirname, '../../bin/vmigrate.cjs'), 'live', 'migrate', 'kvm', 'counter-3', '--destination', b.hostname, '--wait'], {
      env: { ...process.env, VMIGRATE_API_URL: api.url, VMIGRATE_TOKEN: api.tokens.admin },
      timeout: 300_000,
    });
    const lines = stdout.trim().split('\n');
    const id = lines[0]!.split(/\s+/)[0]!;
    expect(id).toMatch(/^lm-[0-9a-f]{12}$/);
    expect(lines.at(-1)).toMatch(new RegExp(`^${id}  Completed  counter-3  kvm-a → kvm-b \\(block\\), memory \\d+ MiB sent, \\d+ MiB left.*, downtime \\d+ ms$`));

    const view = (await api.http.get(`/live-migrations/${id}`)).data;
    expect(view).toMatchObject({ id, kind: 'live', target: 'kvm', serverId: 'counter-3', requestedBy: 'admin', requestedDestination: b.hostname, stage: 'Completed', status: 'COMPLETED', source: a.hostname, destination: b.hostname, mode: 'block' });
    expect(view.downtimeMs).toBeGreaterThan(0);
    expect(view.events.map((e: { name: string }) => e.name)).toEqual(['live.requested', 'checks.passed', 'migration.started', 'migration.completed', 'verify.passed', 'live.completed']);
    expect(view.events.find((e: { name: string }) => e.name === 'migration.completed').data).toMatchObject({ destination: b.hostname, downtimeMs: view.downtimeMs });
    expect(view.memory.totalBytes).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(view.memory.processedBytes).toBeGreaterThan(0);
    expect((await api.http.get('/live-migrations')).data.liveMigrations.map((m: { id: string }) => m.id)).toContain(id);
    expect(virsh(b, 'domstate', 'counter-3')).toBe('running');
    virsh(b, 'destroy', 'counter-3');
  }, 300_000);
});
