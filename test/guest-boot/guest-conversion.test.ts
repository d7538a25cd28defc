/**
 * The one slow end-to-end guest test: a real Debian 12 guest that looks installed on VMware (tools/test-guest) on a
 * simulator VM → cold migration → libguestfs inspection → virt-v2v-in-place on clones of the copied volume, whose
 * first attempt is killed partway and retried from the copy → instance → boot check in qemu (TCG here).
 * Minutes under TCG: see the README for the times measured.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Converter } from '../../guest/convert-on-clones';
import { coldMigrationStateQuery } from '../../workflows/cold-migration-state';
import { sha256File } from '../../tools/disk-image';
import { ensureTestGuest, type TestGuestImage } from '../../tools/test-guest/test-guest';
import { qcow2OwnBytes, readGuestFacts } from '../guest/helpers/guest-facts';
import { commandOf, toolPid } from '../guest/helpers/processes';
import { startApi, waitForMigration } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const VIRTIO_MODULES = ['virtio_blk.ko', 'virtio_net.ko', 'virtio_pci.ko'];

describe('guest conversion end to end: VMware-like Debian → converted → boots on VirtIO', () => {
  let guestImage: TestGuestImage;
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;
  const timings: Record<string, number> = {};
  /** What the killed first conversion attempt left, seen just before it was killed. */
  const firstAttempt: { stage?: string; cloneOwnBytes?: number; bytesReadBefore?: number; killed?: string } = {};
  let conversions = 0;
  let migrationId = '';

  /** Kills the first real virt-v2v-in-place 15 s into its "Converting …" stage, after it has written to its clone. */
  const killFirstConversionPartway = (real: Converter): Converter => async (req) => {
    conversions += 1;
    if (conversions > 1) return real(req);
    let pid = 0;
    let timer: NodeJS.Timeout | undefined;
    return real({
      ...req,
      onSpawn: (p) => (pid = p),
      onProgress: (p) => {
        req.onProgress?.(p);
        if (timer || !p.stage.startsWith('Converting')) return;
        firstAttempt.stage = p.stage;
        timer = setTimeout(async () => {
          firstAttempt.bytesReadBefore = (await api.http.get(`/migrations/${migrationId}`)).data.disks[0].bytesRead;
          firstAttempt.cloneOwnBytes = qcow2OwnBytes(req.disks[0].path);
          const converter = toolPid(pid);
          firstAttempt.killed = commandOf(converter);
          process.kill(converter, 'SIGKILL');
        }, 15_000);
      },
    });
  };

  beforeAll(async () => {
    let t = Date.now();
    guestImage = await ensureTestGuest('bios', { onBuildStart: () => console.log('[guest-conversion] building the test guest (first run on this machine)') });
    timings.guestImageMs = Date.now() - t;
    env = await createMigrationEnv('guest', {
      vms: [
        {
          name: 'deb12',
          guestId: 'debian12_64Guest',
          firmware: 'bios',
          numCPUs: 1,
          memoryMB: 1024,
          powerState: 'poweredOn',
          disks: [{ capacityMiB: 2048 }],
          nics: [{ network: 'VM Network', adapterType: 'vmxnet3' }],
        },
      ],
    });
    t = Date.now();
    await env.sim.uploadDiskImage('deb12', 0, guestImage.path);
    timings.uploadMs = Date.now() - t;
    await env.startWorker('all', { guestTools: { wrapConverter: killFirstConversionPartway } });
    api = await startApi(env);
  }, 20 * 60_000);

  afterAll(async () => {
    console.log(`[guest-conversion] timings ${JSON.stringify(timings)}`);
    await api?.close();
    await env?.close();
  });

  it('inspects, converts on a clone (retried once from the copy), boots to a login prompt; source and copy untouched', async () => {
    const flatFile = path.join(env.sim.datastoreDir, env.sim.vms[0].disks[0].flatPath);
    const sourceSha = await sha256File(guestImage.path);
    expect(await sha256File(flatFile)).toBe(sourceSha);

    const started = Date.now();
    const submit = await api.http.post('/migrations', {
      sourceId: 'sim',
      vm: { name: 'deb12' },
      target: { project: 'proj1', flavor: 'm1.small', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'auto', bootCheck: { timeoutSeconds: 900 } },
    });
    expect(submit.status).toBe(202);
    migrationId = submit.data.id;
    const status = await waitForMigration(api.http, migrationId, { timeoutMs: 75 * 60_000 });
    timings.migrationMs = Date.now() - started;
    expect(status.error).toBeUndefined();
    expect(status).toMatchObject({ status: 'COMPLETED', stage: 'Completed' });

    const state = await env.client.workflow.getHandle(migrationId).query(coldMigrationStateQuery);
    timings.inspectionApplianceMs = state.guestInspection!.applianceMs;
    timings.conversionMs = state.guestFix!.conversion!.durationMs;
    timings.bootCheckMs = (state.validation!.bootCheck as { durationMs: number }).durationMs;

    // Inspect: libguestfs saw a Debian 12 with VMware's tools on an MBR disk, BIOS boot.
    expect(state.guestInspection).toMatchObject({
      osFamily: 'linux',
      distro: 'debian',
      firmware: 'bios',
      partitionTable: 'mbr',
      hostname: 'vmguest',
      root: '/dev/sda1',
      encrypted: false,
      vmwareTools: true,
      convertible: true,
      warnings: [],
    });
    expect(state.guestInspection!.version).toMatch(/^12\.\d+$/);
    expect(state.guestInspection!.filesystems).toEqual([expect.objectContaining({ device: '/dev/sda1', type: 'ext4', label: 'root', mountpoint: '/' })]);

    // Guest Fixes: the first attempt was killed partway, after it had written to its clone; the second converted.
    expect(firstAttempt.killed).toMatch(/^virt-v2v-in-place -i libvirtxml /);
    expect(firstAttempt.stage).toMatch(/^Converting .* to run on KVM$/);
    expect(firstAttempt.cloneOwnBytes).toBeGreaterThan(0);
    expect(conversions).toBe(2);
    const fix = state.guestFix!;
    expect(fix).toMatchObject({ converted: true, conversion: { tool: 'virt-v2v-in-place', attempt: 2, diskBus: 'virtio', discardedStale: [] } });
    expect(fix.conversion!.stages.map((s) => s.message)).toEqual(expect.arrayContaining(['Inspecting the source', firstAttempt.stage, 'Finishing off']));
    expect(fix.conversion!.infos).toEqual(expect.arrayContaining(['This guest has virtio drivers installed.']));
    const copied = `${migrationId}-disk0`;
    expect(await Promise.all(fix.bootVolumes.map(async (v) => [v.name, ...Object.values(await env.target.volumeStorage(v))]))).toEqual([
      [`${copied}-converted`, 'qcow2', copied],
    ]);

    // The retry read nothing from the source again: one copy, its bytes read unchanged since before the kill.
    const history = await env.client.workflow.getHandle(migrationId).fetchHistory();
    const scheduled = (type: string) => history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
    expect(scheduled('exportDisk')).toHaveLength(1);
    expect(status.disks[0].bytesRead).toBe(firstAttempt.bytesReadBefore);
    expect(status.disks[0].bytesRead).toBeGreaterThan(0);
    const guestFixStarted = history.events!.find(
      (e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.scheduledEventId?.toString() === scheduled('guestFix')[0].eventId?.toString(),
    )!.activityTaskStartedEventAttributes!;
    expect(guestFixStarted.attempt).toBe(2);
    expect(guestFixStarted.lastFailure?.message).toMatch(/killed by SIGKILL/);
    expect(guestFixStarted.lastFailure?.applicationFailureInfo?.type).toBe('ConversionInterruptedError');

    // The instance boots from the converted clone, as a qcow2 over the copied raw volume.
    const clone = await env.target.getVolume('proj1', `${copied}-converted`);
    const base = await env.target.getVolume('proj1', copied);
    const described = await env.target.describeInstance({ project: 'proj1', name: 'deb12' });
    expect(described!.spec.volumes).toEqual([clone]);

    // Validation: it reached its login prompt on the serial console, booting from a VirtIO disk.
    expect(state.validation!.bootCheck).toMatchObject({ passed: true, diskBus: 'virtio', machineType: 'pc-i440fx', firmware: 'bios', instance: 'proj1/deb12' });
    expect((state.validation!.bootCheck as { consoleTail: string }).consoleTail).toMatch(/vmguest login: /);

    // Source disk unchanged, and the copy still equal to it: conversion wrote only to the clone.
    expect(await sha256File(flatFile)).toBe(sourceSha);
    expect(await sha256File(env.target.volumePath('proj1', base!.name))).toBe(sourceSha);
    expect(await env.powerState('deb12')).toBe('poweredOff');

    // libguestfs on source and converted disk: VMware tools gone, VirtIO drivers in the converted initramfs only.
    const t = Date.now();
    const [before, after] = await readGuestFacts(
      [
        { path: flatFile, format: 'raw' },
        { path: env.target.volumePath('proj1', clone!.name), format: 'qcow2' },
      ],
      path.join(env.dir, 'facts'),
    );
    timings.factsMs = Date.now() - t;
    expect(before).toMatchObject({ vmtoolsdInstalled: true, openVmToolsInDpkg: true });
    expect(before.initramfsModules).toEqual(expect.arrayContaining(['vmw_pvscsi.ko', 'ext4.ko']));
    for (const m of VIRTIO_MODULES) expect(before.initramfsModules).not.toContain(m);
    expect(after).toMatchObject({ vmtoolsdInstalled: false, openVmToolsInDpkg: false });
    expect(after.initramfsModules).toEqual(expect.arrayContaining(VIRTIO_MODULES));

    // The API shows the seed's events in order.
    const names = ((await api.http.get(`/migrations/${migrationId}/events`)).data.events as Array<{ name: string }>).map((e) => e.name);
    const order = ['source.powered_off', 'export.started', 'write.started', 'guest_fixes.started', 'finalize.completed', 'migration.completed'];
    const firstIndex = order.map((n) => names.indexOf(n));
    expect(firstIndex.every((i) => i >= 0)).toBe(true);
    expect(firstIndex).toEqual([...firstIndex].sort((a, b) => a - b));

    // Re-record the replay test's history of this path: VMIGRATE_RECORD_HISTORY=test/replay/histories/<name>.json.
    if (process.env.VMIGRATE_RECORD_HISTORY) await writeFile(process.env.VMIGRATE_RECORD_HISTORY, JSON.stringify(history, null, 1));
  }, 90 * 60_000);
});
