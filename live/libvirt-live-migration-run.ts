import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { convergenceStep, DEFAULT_CONVERGENCE, type ConvergencePolicy } from './convergence';
import { parseJobStats, type LibvirtJobInfo } from './libvirt-job-info';
import { CpuIncompatibleError, LiveMigrationError, LiveMigrationPrecheckError, liveMigrationFailure } from './live-migration-errors';
import type { LiveMigrationDriver } from './live-migration-driver';
import { checkLivePrerequisites, type ComputeHostFacts } from './live-prerequisites';
import type { LiveCheck, LiveProgress, WatchHooks } from './nova-live-migration-run';
import { CPU_ALLOCATION_RATIO, type LibvirtHosts } from '../targets/libvirt/libvirt-hosts';
import { isNoDomain, VirshError } from '../targets/libvirt/virsh';
import type { LiveMigrationRecord, ServerPlacement } from '../targets/openstack/nova-live-migrations';

/**
 * One live migration between the KVM hosts of a libvirt target, in the same steps as through Nova (check, start,
 * watch, verify, abort). The source's libvirtd drives it peer to peer (`virsh migrate --live --p2p`), so the
 * migration goes on if the worker that started it dies; the domain is defined on the destination and undefined on
 * the source when it completes. Local disks are copied with it (`--copy-storage-all`) unless the target's pool is
 * shared storage. Progress is QEMU's job info; the outcome is where the domain runs afterwards.
 */

export interface LibvirtLiveOps {
  hosts: LibvirtHosts;
  /** Where the output of each `virsh migrate` is kept, to say why one failed. */
  logDir: string;
}

/** What `start` hands to `watch` (the workflow keeps it as an opaque request id). */
interface StartedMigration {
  log: string;
  source: string;
  destination: string;
}

const GIB = 1024 ** 3;

async function domainDiskBytes(ops: LibvirtLiveOps, host: string, domain: string): Promise<number> {
  const out = await ops.hosts.virsh(host).run(['domblkinfo', '--all', domain]).catch(() => '');
  let total = 0;
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 2 && /^\d+$/.test(cols[1]!)) total += Number(cols[1]);
  }
  return total;
}

async function jobOn(ops: LibvirtLiveOps, host: string, domain: string, completed = false): Promise<LibvirtJobInfo> {
  try {
    return parseJobStats(await ops.hosts.virsh(host).run(['domjobinfo', '--rawstats', ...(completed ? ['--completed'] : []), domain]));
  } catch (err) {
    // No domain there, or one that cannot have a migration job: the incoming copy on a destination (libvirt keeps
    // the statistics on the source only) or a definition that is not running.
    if (isNoDomain(err) || (err instanceof VirshError && /available only on the source host|domain is not running/i.test(err.libvirtMessage))) return { type: 'none' };
    // libvirt holds the domain's job lock while the migration's perform step waits on QEMU (connecting to the
    // destination, say): the job is under way, its counters just cannot be read now.
    if (err instanceof VirshError && /cannot acquire state change lock \(held by [^)]*Migrate/i.test(err.libvirtMessage)) return { type: 'running' };
    throw err;
  }
}

const STATUS: Record<string, string> = { running: 'ACTIVE', paused: 'PAUSED', 'shut off': 'SHUTOFF', crashed: 'ERROR', 'in shutdown': 'ACTIVE' };

/** Where the domain runs, as Nova would describe a server (its host, ACTIVE or not, its size, busy migrating). */
export async function domainPlacement(ops: LibvirtLiveOps, domain: string): Promise<ServerPlacement> {
  const where = await ops.hosts.locate(domain);
  // During a migration the destination holds a paused incoming copy; the source is the one with the job.
  let here = where.find((w) => w.state === 'running') ?? where[0];
  for (const w of where) if ((await jobOn(ops, w.host, domain)).type === 'running') here = w;
  if (!here) {
    throw new LiveMigrationPrecheckError(
      `no host of target ${ops.hosts.targetName} has a domain ${domain}`,
      `Name the domain by its name or UUID as virsh list shows it on one of ${ops.hosts.config.hosts.map((h) => h.name).join(', ')}`,
    );
  }
  const virsh = ops.hosts.virsh(here.host);
  const [info, job, diskBytes] = await Promise.all([virsh.fields(['dominfo', domain]), jobOn(ops, here.host, domain), domainDiskBytes(ops, here.host, domain)]);
  return {
    id: info.get('UUID') ?? domain,
    name: info.get('Name') ?? domain,
    status: STATUS[here.state] ?? here.state.toUpperCase(),
    ...(job.type === 'running' ? { taskState: 'migrating' } : {}),
    host: here.host,
    flavor: {
      vcpus: Number(info.get('CPU(s)') ?? 0),
      ramMB: Math.ceil(Number((info.get('Max memory') ?? '0').replace(/\s*KiB$/, '')) / 1024),
      diskGB: Math.ceil(diskBytes / GIB),
    },
    volumesAttached: [],
    bootFromVolume: ops.hosts.config.sharedStorage,
  };
}

/** The libvirt hosts in the shape of Nova's compute services, hypervisors and capacity (for the same checks). */
async function hostFacts(ops: LibvirtLiveOps): Promise<ComputeHostFacts[]> {
  return Promise.all(
    ops.hosts.config.hosts.map(async (h) => {
      const f = await ops.hosts.facts(h.name);
      const cpus = f.cpus ?? 0;
      return {
        service: { id: h.name, host: h.name, zone: '', enabled: true, up: f.reachable, forcedDown: false },
        ...(f.hypervisor
          ? { hypervisor: { id: h.name, hostname: h.name, host: h.name, type: f.hypervisor.type, version: f.hypervisor.version, vcpus: cpus, vcpusUsed: f.vcpusUsed ?? 0, memoryMB: 0, memoryMBUsed: 0 } }
          : {}),
        ...(f.reachable
          ? { free: { vcpus: cpus * CPU_ALLOCATION_RATIO - (f.vcpusUsed ?? 0), memoryMB: f.freeMemoryMB ?? 0, diskGB: Math.floor((f.poolAvailableBytes ?? 0) / GIB) } }
          : {}),
      };
    }),
  );
}

/** Whether the destination's hypervisor can run the domain's CPU (libvirt's own comparison, with its reason). */
async function cpuProblem(ops: LibvirtLiveOps, source: string, destination: string, domain: string): Promise<string | undefined> {
  const xml = await ops.hosts.virsh(source).run(['dumpxml', domain]);
  if (!/<cpu[\s>]/.test(xml)) return undefined; // the hypervisor's default model: every host of one QEMU has it
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-cpu-'));
  try {
    const file = path.join(dir, 'domain.xml');
    writeFileSync(file, xml);
    const virtType = /<domain[^>]*type=['"](\w+)['"]/.exec(xml)?.[1] ?? 'kvm';
    await ops.hosts.virsh(destination).run(['hypervisor-cpu-compare', '--virttype', virtType, '--error', file]);
    return undefined;
  } catch (err) {
    // Only libvirt's verdict on the CPU is a CPU problem; an unreachable host or a failed command is an error.
    if (err instanceof VirshError && /incompatible|does not provide|doesn't match|not supported by/i.test(err.libvirtMessage)) return `host ${destination}: ${err.libvirtMessage}`;
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function checkLibvirtLive(ops: LibvirtLiveOps, input: { serverId: string; destination?: string; blockMigration: 'auto' | boolean }): Promise<LiveCheck> {
  const server = await domainPlacement(ops, input.serverId);
  const facts = await hostFacts(ops);
  const prerequisites = checkLivePrerequisites(server, facts, input);
  if (prerequisites.ok) {
    const cpu = await Promise.all(prerequisites.candidates.map(async (c) => ({ host: c, problem: await cpuProblem(ops, server.host!, c, input.serverId) })));
    const incompatible = cpu.filter((c) => c.problem);
    prerequisites.candidates = cpu.filter((c) => !c.problem).map((c) => c.host);
    if (prerequisites.candidates.length === 0) {
      throw new CpuIncompatibleError(
        `server ${server.name} cannot be live-migrated: the guest CPU does not match ${incompatible.map((c) => c.host).join(', ')}`,
        'Give the domain a CPU model every host has (a common baseline: <cpu mode="custom"><model>…</model></cpu>), then migrate again',
        incompatible.map((c) => c.problem).join('; '),
      );
    }
    // The host with the most free memory first: the one a migration without a named destination goes to.
    const free = new Map(facts.map((f) => [f.service.host, f.free?.memoryMB ?? 0]));
    prerequisites.candidates.sort((a, b) => (free.get(b) ?? 0) - (free.get(a) ?? 0));
  }
  if (!prerequisites.ok) throw new LiveMigrationPrecheckError(`server ${server.name} cannot be live-migrated: ${prerequisites.problems.join('; ')}`, 'Fix what the checks name and migrate again');
  return { server, prerequisites, after: 0 };
}

/** Where the output of an operation's `virsh migrate` goes (by a hash: the id is the caller's text). */
const logOf = (ops: LibvirtLiveOps, operationId: string) => path.join(ops.logDir, `${createHash('sha256').update(operationId).digest('hex').slice(0, 24)}.log`);

/**
 * Starts `virsh migrate` in the background (its own process: the worker may die, the migration goes on). Run again
 * for the same operation after it began (the domain migrating, or moved off `source`), it starts nothing.
 */
export async function startLibvirtLive(
  ops: LibvirtLiveOps,
  input: { operationId: string; serverId: string; source: string; destination?: string; blockMigration: 'auto' | boolean },
): Promise<{ requestId?: string; alreadyStarted: boolean }> {
  const log = logOf(ops, input.operationId);
  const where = await ops.hosts.locate(input.serverId);
  const elsewhere = where.find((w) => w.host !== input.source);
  if ((await jobOn(ops, input.source, input.serverId)).type === 'running' || (elsewhere && !where.some((w) => w.host === input.source))) {
    const destination = readLog(log).destination ?? input.destination ?? elsewhere?.host ?? '';
    return { requestId: JSON.stringify({ log, source: input.source, destination } satisfies StartedMigration), alreadyStarted: true };
  }
  const check = await checkLibvirtLive(ops, input);
  const source = check.server.host!;
  const destination = check.prerequisites.candidates[0]!;
  const dest = ops.hosts.host(destination);
  const args = ['migrate', '--live', '--p2p', '--persistent', '--undefinesource', '--verbose'];
  if (check.prerequisites.mode === 'block') args.push('--copy-storage-all');
  // Post-copy is enabled from the start (QEMU needs it negotiated) but only switched to when forced.
  const helpers = ops.hosts.config.liveMigration;
  if (helpers?.permitPostCopy) args.push('--postcopy');
  if (helpers?.permitAutoConverge) args.push('--auto-converge');
  if (dest.migrationAddress) args.push('--migrateuri', `tcp://${dest.migrationAddress}`, '--listen-address', dest.migrationAddress);
  args.push(input.serverId, dest.uri);
  mkdirSync(ops.logDir, { recursive: true });
  try {
    // Created once per operation: a retry that comes before libvirt shows the job finds it and starts nothing.
    writeFileSync(log, `vmigrate-destination=${destination}\n`, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { requestId: JSON.stringify({ log, source, destination: readLog(log).destination ?? destination } satisfies StartedMigration), alreadyStarted: true };
  }
  // The shell only runs what it is given as arguments and records how virsh ended; nothing is spliced into it.
  const child = spawn('sh', ['-c', '"$@" >>"$LOG" 2>&1; echo "vmigrate-exit=$?" >>"$LOG"', 'sh', 'virsh', '-c', ops.hosts.host(source).uri, ...args], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, LOG: log, LC_ALL: 'C' },
  });
  child.unref();
  return { requestId: JSON.stringify({ log, source, destination } satisfies StartedMigration), alreadyStarted: false };
}

function readLog(file: string): { ended: boolean; ok: boolean; destination?: string; error?: string } {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { ended: false, ok: false };
  }
  const exit = /vmigrate-exit=(\d+)/.exec(text);
  const destination = /^vmigrate-destination=(.+)$/m.exec(text)?.[1];
  // With --verbose, virsh's progress ("Migration: [ 45 %]") and its error share a line, separated by \r or not at all.
  const error = text
    .split(/[\r\n]+/)
    .map((l) => /error:\s*(.*)$/.exec(l)?.[1]?.trim())
    .filter((l): l is string => !!l)
    .join(': ');
  return { ended: !!exit, ok: exit?.[1] === '0', ...(destination ? { destination } : {}), ...(error ? { error } : {}) };
}

/** A migration that did not begin within this long after `start` is taken as one that failed to begin. */
const BEGIN_TIMEOUT_MS = 120_000;
/** A job gone this long, the domain still (only) on its source and no log of its end here: it ended there. */
const ENDED_WITHOUT_LOG_MS = 15_000;

export async function watchLibvirtLive(
  ops: LibvirtLiveOps,
  input: { serverId: string; requestId?: string; convergence?: ConvergencePolicy; resumed?: LiveProgress },
  hooks: WatchHooks,
): Promise<LiveMigrationRecord> {
  if (!input.requestId) throw new LiveMigrationError('the live migration has no record of how it was started', 'Migrate it again');
  const { log, source, destination } = JSON.parse(input.requestId) as StartedMigration;
  const policy = input.convergence ?? DEFAULT_CONVERGENCE;
  const started = hooks.now() - (input.resumed?.runningMs ?? 0);
  const done = { forced: input.resumed?.forced ?? false, aborted: input.resumed?.aborted ?? false, ...(input.resumed?.postCopy ? { postCopy: true } : {}) };
  const postCopy = ops.hosts.config.liveMigration?.permitPostCopy === true;
  let abortReason: string | undefined;
  let seenRunning = false;
  let idleSince: number | undefined;
  for (;;) {
    const job = await jobOn(ops, source, input.serverId);
    const runningMs = hooks.now() - started;
    const progress: LiveProgress = {
      status: job.type === 'running' ? 'running' : 'preparing',
      runningMs,
      ...(job.memory ? { memory: job.memory } : {}),
      ...(job.disk ? { disk: job.disk } : {}),
      ...(job.data ? { data: job.data } : {}),
      ...(job.dirtyRatePagesPerSecond !== undefined ? { dirtyRateBytesPerSecond: job.dirtyRatePagesPerSecond * (job.pageSizeBytes ?? 4096) } : {}),
      ...(job.expectedDowntimeMs !== undefined ? { expectedDowntimeMs: job.expectedDowntimeMs } : {}),
      ...(job.iteration !== undefined ? { iteration: job.iteration } : {}),
      ...done,
    };
    hooks.heartbeat(progress);
    if (job.type === 'running') {
      seenRunning = true;
      idleSince = undefined;
      const step = convergenceStep(policy, runningMs, done);
      if (step.act === 'force-complete' && postCopy) {
        // As Nova's libvirt driver with post-copy permitted: the guest goes on on the destination now, and the pages
        // it has not got yet are fetched from the source as it touches them.
        // While libvirt still copies the disks (block migration) QEMU's memory migration has not begun, and cannot
        // switch yet: asked again at the next look.
        const switched = await ops.hosts
          .virsh(source)
          .run(['migrate-postcopy', input.serverId])
          .then(
            () => true,
            (err: unknown) => {
              if (err instanceof VirshError && /Postcopy must be started after migration has been started/i.test(err.libvirtMessage)) return false;
              throw err;
            },
          );
        if (switched) {
          Object.assign(done, { forced: true, postCopy: true });
          hooks.heartbeat({ ...progress, ...done });
        }
      } else if (step.act === 'force-complete') {
        // As Nova's libvirt driver forces completion without post-copy: pause the guest, the rest is copied at once.
        await ops.hosts.virsh(source).run(['suspend', input.serverId]);
        done.forced = true;
        // Recorded at once: an attempt that dies now leaves a paused guest its retry must resume.
        hooks.heartbeat({ ...progress, forced: true });
      } else if (step.act === 'abort' && done.postCopy) {
        // Past the switch there is no going back: the guest runs on the destination, whose memory is only complete
        // when the copy ends. It is waited for.
      } else if (step.act === 'abort') {
        await ops.hosts.virsh(source).run(['domjobabort', input.serverId]).catch(() => undefined);
        done.aborted = true;
        abortReason = step.reason;
      }
      await hooks.sleep(1000);
      continue;
    }
    const outcome = readLog(log);
    const where = await ops.hosts.locate(input.serverId, { mustAnswer: [source, destination] });
    const onDest = where.find((w) => w.host === destination);
    const onSource = where.find((w) => w.host === source);
    // The log is on the worker that started it; another worker (or one whose virsh died) goes by libvirt alone: a
    // job that ran, is gone, and left the domain where it was has ended.
    idleSince ??= hooks.now();
    const endedWithoutLog = seenRunning && !outcome.ended && onSource && !onDest && hooks.now() - idleSince > ENDED_WITHOUT_LOG_MS;
    if (!outcome.ended && !endedWithoutLog && !(onDest && !onSource) && (seenRunning || runningMs < BEGIN_TIMEOUT_MS)) {
      await hooks.sleep(seenRunning ? 250 : 500);
      continue;
    }
    if (onDest && !onSource) {
      // A forced migration leaves the guest paused where it lands: it runs again there, as it ran before.
      // (The checks required it running, so a paused guest here is one this migration paused.)
      if (onDest.state === 'paused') await ops.hosts.virsh(destination).run(['resume', input.serverId]);
      const stats = await jobOn(ops, destination, input.serverId, true);
      return {
        id: 0,
        status: 'completed',
        sourceCompute: source,
        destCompute: destination,
        ...(stats.memory ? { memory: stats.memory } : {}),
        ...(stats.disk ? { disk: stats.disk } : {}),
        ...(stats.downtimeMs !== undefined ? { downtimeMs: stats.downtimeMs } : {}),
        ...(stats.elapsedMs !== undefined ? { durationMs: stats.elapsedMs } : {}),
        ...(stats.data ? { transferredBytes: stats.data.processedBytes } : {}),
        ...(done.postCopy ? { postCopy: true } : {}),
      };
    }
    if (done.forced && onSource?.state === 'paused') await ops.hosts.virsh(source).run(['resume', input.serverId]).catch(() => undefined);
    if (done.aborted) throw new LiveMigrationError(`the live migration was aborted: ${abortReason ?? 'it did not converge'}`, 'The instance stays running on its source; migrate it when it is less busy, or with force-complete');
    const failed = await jobOn(ops, source, input.serverId, true).catch(() => ({ type: 'none' }) as LibvirtJobInfo);
    throw liveMigrationFailure(outcome.error ?? failed.error ?? `the migration of ${input.serverId} from ${source} to ${destination} ended without moving it`);
  }
}

export async function verifyLibvirtLive(ops: LibvirtLiveOps, input: { serverId: string; source: string; record: LiveMigrationRecord }): Promise<ServerPlacement> {
  const server = await domainPlacement(ops, input.serverId);
  const where = await ops.hosts.locate(input.serverId, { mustAnswer: [input.source, ...(input.record.destCompute ? [input.record.destCompute] : [])] });
  if (server.status !== 'ACTIVE' || server.host !== input.record.destCompute || where.some((w) => w.host === input.source)) {
    throw new LiveMigrationError(
      `after the live migration domain ${server.name} is ${server.status} on ${where.map((w) => `${w.host} (${w.state})`).join(', ')}, not running on ${input.record.destCompute} alone`,
      'Check the domain on both hosts (virsh list --all) and its log in /var/log/libvirt/qemu',
    );
  }
  return server;
}

/** Aborts the domain's running migration job (a cancel): it stays running on its source. */
export async function abortLibvirtLive(ops: LibvirtLiveOps, input: { serverId: string }): Promise<{ aborted: boolean }> {
  let aborted = false;
  // Past the switch to post-copy the guest runs on the destination and its source copy is incomplete: neither
  // aborting nor resuming the source is possible, so the migration is left to finish.
  const inPostCopy = async (host: string) => /post-copy/i.test(await ops.hosts.virsh(host).run(['domstate', '--reason', input.serverId]).catch(() => ''));
  for (const w of await ops.hosts.locate(input.serverId)) {
    if ((await jobOn(ops, w.host, input.serverId)).type !== 'running' || (await inPostCopy(w.host))) continue;
    await ops.hosts.virsh(w.host).run(['domjobabort', input.serverId]);
    aborted = true;
  }
  // A cancel after force-complete paused the guest: it runs on where it stays.
  for (const w of await ops.hosts.locate(input.serverId)) {
    if (w.state === 'paused' && !(await inPostCopy(w.host))) await ops.hosts.virsh(w.host).run(['resume', input.serverId]).catch(() => undefined);
  }
  return { aborted };
}

/** The steps above as a live-migration driver of a libvirt target. */
export function libvirtLiveMigrationDriver(ops: LibvirtLiveOps): LiveMigrationDriver {
  return {
    check: (input) => checkLibvirtLive(ops, input),
    start: (input) => startLibvirtLive(ops, input),
    watch: (input, hooks) => watchLibvirtLive(ops, input, hooks),
    verify: (input) => verifyLibvirtLive(ops, input),
    abort: (input) => abortLibvirtLive(ops, input),
  };
}
