import {
  BlockMigrationDiskError,
  CpuIncompatibleError,
  LiveMigrationError,
  LiveMigrationPrecheckError,
  MigrationConnectionError,
  NoValidHostError,
  liveMigrationFailure,
} from '../../live/live-migration-errors';
import { convergenceStep } from '../../live/convergence';
import { checkLivePrerequisites, type ComputeHostFacts } from '../../live/live-prerequisites';
import type { ServerPlacement } from '../../targets/openstack/nova-live-migrations';

/** The failure texts Nova and libvirt give (as their sources format them), each to its typed error. */
describe('live migration failures, typed with what to do', () => {
  const cases: Array<[string, new (...a: never[]) => LiveMigrationError, RegExp]> = [
    [
      "Unacceptable CPU info: CPU doesn't have compatibility.\n\nthe CPU is incompatible with host CPU: Host CPU does not provide required features: avx512f, avx512dq\n\nRefer to http://libvirt.org/html/libvirt-libvirt-host.html#virCPUCompareResult",
      CpuIncompatibleError,
      /common CPU baseline model/,
    ],
    ["operation failed: guest CPU doesn't match specification: missing features: pcid", CpuIncompatibleError, /cpu_mode = custom/],
    ['No valid host was found. There are not enough hosts available.', NoValidHostError, /openstack hypervisor show <host>/],
    [
      'Migration pre-check error: Unable to migrate 3f2a9c1e-0000-4000-8000-000000000001: Disk of instance is too large(available on destination host:1073741824 < need:21474836480)',
      BlockMigrationDiskError,
      /lacks free disk/,
    ],
    ['Timed out waiting for a reply to message ID 0f3b4c1d2e', MigrationConnectionError, /migration network/],
    ['Compute service of lab-fake-2 is unavailable at this time.', LiveMigrationPrecheckError, /migrate again/],
  ];
  it.each(cases)('%s', (text, type, resolution) => {
    const err = liveMigrationFailure(text);
    expect(err).toBeInstanceOf(type);
    expect(err.toolMessage).toBe(text);
    expect(err.message).toMatch(resolution);
    expect(err.message).toContain(text.trim());
  });
  it('an unknown text is still a live migration failure, with the text', () => {
    const err = liveMigrationFailure('something new went wrong');
    expect(err.constructor).toBe(LiveMigrationError);
    expect(err.message).toBe("the live migration failed (something new went wrong). See the cause, and check the server's status and host before migrating it again: a failure after the switchover can leave it stopped");
  });
});

describe('checks before a live migration', () => {
  const server: ServerPlacement = {
    id: 's1',
    name: 'web01',
    status: 'ACTIVE',
    host: 'cmp-1',
    zone: 'az1',
    flavor: { vcpus: 4, ramMB: 8192, diskGB: 40 },
    volumesAttached: ['v1'],
    bootFromVolume: true,
  };
  const cpu = (model: string, features: string[]) => ({ arch: 'x86_64', vendor: 'Intel', model, features });
  const host = (name: string, over: Partial<ComputeHostFacts['service']> = {}, free = { vcpus: 16, memoryMB: 65536, diskGB: 500 }, version = 8002000, features = ['sse4.2', 'avx2']): ComputeHostFacts => ({
    service: { id: `id-${name}`, host: name, zone: 'az1', enabled: true, up: true, forcedDown: false, ...over },
    hypervisor: { id: `hv-${name}`, hostname: name, host: name, type: 'QEMU', version, vcpus: 32, vcpusUsed: 0, memoryMB: 131072, memoryMBUsed: 0, cpuInfo: cpu('Skylake', features) },
    free,
  });

  it('a volume-backed server goes live to any host that passes; one booted from an image is a block migration', () => {
    const v = checkLivePrerequisites(server, [host('cmp-1'), host('cmp-2'), host('cmp-3')], { blockMigration: 'auto' });
    expect(v).toEqual({ ok: true, problems: [], candidates: ['cmp-2', 'cmp-3'], mode: 'live' });
    expect(checkLivePrerequisites({ ...server, bootFromVolume: false }, [host('cmp-1'), host('cmp-2')], { blockMigration: 'auto' }).mode).toBe('block');
  });

  it('each reason a named destination cannot take it', () => {
    const src = host('cmp-1');
    const check = (dest: ComputeHostFacts) => checkLivePrerequisites(server, [src, dest], { destination: dest.service.host, blockMigration: 'auto' }).problems;
    expect(check(host('cmp-2', { up: false }))).toEqual(['compute cmp-2 is down']);
    expect(check(host('cmp-2', { enabled: false, disabledReason: 'firmware update' }))).toEqual(['compute cmp-2 is disabled (firmware update)']);
    expect(check(host('cmp-2', { zone: 'az2' }))).toEqual(['compute cmp-2 is in zone az2, the server in az1']);
    expect(check(host('cmp-2', {}, { vcpus: 2, memoryMB: 4096, diskGB: 500 }))).toEqual(['compute cmp-2 lacks capacity: 2 vCPUs free, 4 needed; 4096 MiB of memory free, 8192 needed']);
    expect(check(host('cmp-2', {}, undefined, 6002000))).toEqual(["compute cmp-2's hypervisor (version 6002000) is older than the source's (8002000): Nova does not migrate to an older one"]);
    expect(check(host('cmp-2', {}, undefined, 8002000, ['sse4.2']))).toEqual(["compute cmp-2's CPU (Skylake) lacks features of the source's (Skylake): avx2; configure a common CPU baseline model"]);
    expect(checkLivePrerequisites(server, [src], { destination: 'cmp-9', blockMigration: 'auto' }).problems).toEqual(['no compute host cmp-9; there are: cmp-1']);
  });

  it('the server itself: not ACTIVE, busy, or its compute down', () => {
    const hosts = [host('cmp-1', { up: false }), host('cmp-2')];
    expect(checkLivePrerequisites({ ...server, status: 'SHUTOFF', taskState: 'powering-on' }, hosts, { blockMigration: 'auto' }).problems).toEqual([
      'server web01 is SHUTOFF: only an ACTIVE server can be live-migrated',
      'server web01 is busy (powering-on): wait for it to finish',
      "the server's compute cmp-1 is down: a live migration needs it running (evacuate the server instead)",
    ]);
  });

  it('no host left: every other host with its reasons', () => {
    const v = checkLivePrerequisites({ ...server, bootFromVolume: false }, [host('cmp-1'), host('cmp-2', {}, { vcpus: 16, memoryMB: 65536, diskGB: 10 }), host('cmp-3', { enabled: false })], { blockMigration: 'auto' });
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual(['no other compute host can take server web01: compute cmp-2 lacks capacity: 10 GB of disk free, 40 needed for a block migration; compute cmp-3 is disabled']);
  });
});

describe('a live migration that does not converge is never left running', () => {
  const none = { forced: false, aborted: false };
  it('waits within the limit; past it forces completion once, and aborts if it still runs at twice the limit', () => {
    const policy = { limitSeconds: 60, onLimit: 'force-complete' as const };
    expect(convergenceStep(policy, 59_000, none)).toEqual({ act: 'wait' });
    expect(convergenceStep(policy, 60_000, none)).toEqual({ act: 'force-complete', reason: 'it did not complete within 60 s' });
    expect(convergenceStep(policy, 90_000, { forced: true, aborted: false })).toEqual({ act: 'wait' });
    expect(convergenceStep(policy, 120_000, { forced: true, aborted: false })).toEqual({ act: 'abort', reason: 'it did not complete within 60 s, even forced' });
    expect(convergenceStep(policy, 500_000, { forced: true, aborted: true })).toEqual({ act: 'wait' });
    // A short limit still leaves a forced migration a minute to send its last pages.
    const short = { limitSeconds: 3, onLimit: 'force-complete' as const };
    expect(convergenceStep(short, 3_000, none)).toEqual({ act: 'force-complete', reason: 'it did not complete within 3 s' });
    expect(convergenceStep(short, 62_000, { forced: true, aborted: false })).toEqual({ act: 'wait' });
    expect(convergenceStep(short, 63_000, { forced: true, aborted: false })).toEqual({ act: 'abort', reason: 'it did not complete within 3 s, even forced' });
  });
  it('abort: past the limit it is aborted at once', () => {
    expect(convergenceStep({ limitSeconds: 30, onLimit: 'abort' }, 31_000, none)).toEqual({ act: 'abort', reason: 'it did not complete within 30 s' });
  });
});
