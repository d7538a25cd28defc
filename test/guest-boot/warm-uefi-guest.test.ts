/**
 * A warm migration of the UEFI guest with its data disk (tools/test-guest variant uefi): the full sync, then
 * incremental syncs while the "guest" keeps writing into the data disk's scratch partition (where no file system
 * lives, so the guest still boots), more writes after the last sync, a cutover through the API. Before conversion,
 * each synced volume equals its source disk as it was at power-off; after it, the instance boots with UEFI and mounts
 * /srv from the second disk. Minutes under TCG.
 */
import { sha256File } from '../../tools/disk-image';
import { scratchRegion } from '../../tools/test-guest/build-test-guest';
import { dataDiskMarker } from '../../tools/test-guest/guest-files';
import { ensureTestGuest, type TestGuestImage } from '../../tools/test-guest/test-guest';
import { startApi, waitForMigration } from '../harness/api-server';
import { randomWrites, seededRandom, startGuestWriter } from '../harness/guest-writer';
import { bootReport, guestVariantVm, uploadGuestDisks } from '../harness/guest-variant-vm';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { liveDiskFile } from '../harness/warm-migration';
import { warmMigrationStateQuery } from '../../workflows/warm-migration-state';

describe('warm migration of a UEFI guest with two disks: synced byte for byte while it writes, then converted and booted', () => {
  let guest: TestGuestImage;
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    guest = await ensureTestGuest('uefi', { onBuildStart: () => console.log('[warm-uefi-guest] building the uefi test guest') });
    env = await createMigrationEnv('warm-uefi', { vms: [guestVariantVm('uefi-warm', guest)] });
    await uploadGuestDisks(env.sim, 'uefi-warm', guest);
    await env.startWorker();
    api = await startApi(env);
  }, 20 * 60_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  it('ends with volumes equal to the disks at power-off, and the converted instance boots with /srv mounted', async () => {
    const scratch = scratchRegion(guest.variant.dataDisk!);
    const started = Date.now();
    const submit = await api.http.post('/migrations', {
      kind: 'warm',
      warm: { syncIntervalSeconds: 2 },
      sourceId: 'sim',
      vm: { name: 'uefi-warm' },
      target: { project: 'proj1', flavor: 'm1.small', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'auto', bootCheck: { timeoutSeconds: 900 } },
    });
    expect(submit.status).toBe(202);
    const id: string = submit.data.id;

    const writer = startGuestWriter(liveDiskFile(env, 0, 1), scratch.length, 4242, { burst: 2, pauseMs: 200, maxLength: 64 * 1024, regionStart: scratch.offset });
    let ready: any;
    try {
      ready = await waitForMigration(api.http, id, {
        done: (s) => s.status !== 'RUNNING' || (s.warm?.syncs ?? []).filter((x: { kind: string; changedBytes: number }) => x.kind === 'incremental' && x.changedBytes > 0).length >= 2,
        timeoutMs: 10 * 60_000,
      });
    } finally {
      await writer.stop();
    }
    expect(ready.status).toBe('RUNNING');
    expect(ready.stage).toMatch(/Ready|Syncing/);
    expect(writer.writes).toBeGreaterThan(4);
    // Changes after the last periodic sync: the final sync must carry them.
    await randomWrites(liveDiskFile(env, 0, 1), scratch.length, seededRandom(77), 10, 64 * 1024, scratch.offset);

    const cut = await api.http.post(`/migrations/${id}/cutover`, {});
    expect(cut.status).toBe(202);
    const done = await waitForMigration(api.http, id, { timeoutMs: 40 * 60_000 });
    expect(done.error).toBeUndefined();
    expect(done).toMatchObject({ status: 'COMPLETED', stage: 'Completed' });
    console.log(`[warm-uefi-guest] migration ${Math.round((Date.now() - started) / 1000)} s, boot check ${done.validation?.bootCheck?.durationMs} ms`);

    // Byte-identical to the source disks as they were at power-off (the synced volumes are never converted in place).
    expect(await env.powerState('uefi-warm')).toBe('poweredOff');
    for (const i of [0, 1]) {
      expect(await sha256File(env.target.volumePath('proj1', `${id}-disk${i}`))).toBe(await sha256File(liveDiskFile(env, 0, i)));
    }
    // The boot disk was never written by the "guest": it still is the image.
    expect(await sha256File(liveDiskFile(env, 0, 0))).toBe(await sha256File(guest.disks[0]));
    expect(await sha256File(liveDiskFile(env, 0, 1))).not.toBe(await sha256File(guest.disks[1]));

    // Converted at cutover, booted with UEFI from a fresh variable store: root, ESP and /srv on VirtIO.
    expect(done.guestConversion).toMatchObject({ converted: true });
    // The guest has the removable-media path already: checked, nothing added.
    const state = await env.client.workflow.getHandle(id).query(warmMigrationStateQuery);
    expect(state.guestFix!.conversion!.uefiBootPath).toMatchObject({ present: true, added: false });
    expect(done.validation.bootCheck).toMatchObject({ passed: true, firmware: 'efi', machineType: 'pc-q35' });
    expect(done.validation.bootCheck.consoleTail).toMatch(/vmguest login: /);
    expect(bootReport(done.validation.bootCheck.consoleTail)).toMatchObject({
      firmware: 'efi',
      root: '/dev/vda2,ext4',
      efi: '/dev/vda1,vfat',
      srv: '/dev/vdb1,ext4',
      marker: dataDiskMarker(guest.identity),
    });
  }, 60 * 60_000);
});
