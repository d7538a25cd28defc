/**
 * Agent-based migration with the real ISO in qemu (TCG here): a machine with exactly 768 MiB boots the template's
 * ISO, with the Debian test guest's disk as its second drive; the migration appears with what the agent found, is
 * confirmed, and is killed mid-copy (qemu SIGKILLed); booted again from the same ISO it resumes, completes, the
 * guest is converted and boots in the boot check. The source disk is attached writable, so that only the agent's own
 * care (block devices set read-only, file systems mounted without journal replay) keeps it unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, open, writeFile } from 'node:fs/promises';
import type { Server } from 'node:https';
import path from 'node:path';
import pino from 'pino';
import { serveEnrollment } from '../../api/agent-enrollment';
import { selectUefiFirmware } from '../../guest/uefi-firmware';
import { makeDiskImage, sha256File } from '../../tools/disk-image';
import { makeWindowsDisk } from '../../tools/windows-disk/windows-disk';
import { GUEST_HOSTNAME } from '../../tools/test-guest/recipe';
import { ensureTestGuest, type TestGuestImage } from '../../tools/test-guest/test-guest';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const MiB = 1024 * 1024;
const MACHINE_UUID = '7a1e0c2d-3b4f-4a5b-8c6d-0123456789ab';
const DISK_SERIAL = 'SRC-BIOS-0001';
const NIC_MAC = '52:54:00:ab:cd:01';

interface BootedMachine {
  proc: ChildProcess;
  console: () => string;
  exited: Promise<unknown>;
}

/**
 * The machine: q35, 768 MiB, two CPUs, booting the ISO from its CD-ROM, its own disk on VirtIO, qemu's user network;
 * BIOS, or UEFI with OVMF (a fresh variable store).
 */
function bootFromIso(
  iso: string,
  disk: string,
  consoleFile: string,
  uefi?: { code: string; vars: string },
  identity: { uuid: string; serial: string } = { uuid: MACHINE_UUID, serial: DISK_SERIAL },
): BootedMachine {
  let out = '';
  const proc = spawn('qemu-system-x86_64', [
    '-machine', 'q35,accel=tcg', '-m', '768', '-smp', '2', '-nographic', '-no-reboot',
    ...(uefi ? ['-drive', `if=pflash,format=raw,readonly=on,file=${uefi.code}`, '-drive', `if=pflash,format=raw,file=${uefi.vars}`] : []),
    '-uuid', identity.uuid,
    '-cdrom', iso, '-boot', 'd',
    '-drive', `file=${disk},if=none,id=src,format=raw`, '-device', `virtio-blk-pci,drive=src,serial=${identity.serial}`,
    '-netdev', 'user,id=n0', '-device', `virtio-net-pci,netdev=n0,mac=${NIC_MAC}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.setEncoding('latin1').on('data', (c: string) => {
    out += c;
    void writeFile(consoleFile, out).catch(() => undefined);
  });
  proc.stderr!.setEncoding('latin1').on('data', (c: string) => (out += c));
  return { proc, console: () => out, exited: new Promise((r) => proc.once('exit', r)) };
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('agent ISO in qemu: 768 MiB, enroll, confirm, killed mid-copy, booted again, resumed, converted, boots; a Windows disk; a revoked key', () => {
  let guest: TestGuestImage;
  let env: MigrationEnv;
  let api: TestApi;
  let enrollment: Server;
  const machines: BootedMachine[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    guest = await ensureTestGuest('bios');
    // The ISO's agent reaches the host at 10.0.2.2, qemu's user-network address for it.
    env = await createMigrationEnv('agent-iso', { vms: [] }, { agentsReachAt: '10.0.2.2' });
    await env.startWorker();
    api = await startApi(env);
    enrollment = await serveEnrollment({ client: env.client, taskQueue: env.taskQueue, agents: env.config.agents!, logger: pino({ level: 'silent' }), limits: env.config.admission });
  }, 900_000);

  afterAll(async () => {
    for (const m of machines) m.proc.kill('SIGKILL');
    enrollment?.close();
    await api?.close();
    await env?.close();
    console.log(`agent ISO timings (ms): ${JSON.stringify(timings)}`);
  });

  it('migrates the machine, resuming after a hard reset mid-copy, and the converted guest boots', async () => {
    const created = await api.http.post('/agent-templates', {
      name: 'lab machines',
      target: { project: 'p1', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'auto', bootCheck: { timeoutSeconds: 600 } },
      autoStart: false,
    });
    expect(created.status).toBe(201);
    let t = Date.now();
    const res = await api.http.get(`/agent-templates/${created.data.id}/iso`, { responseType: 'arraybuffer' });
    timings.isoDownload = Date.now() - t;
    expect(res.status).toBe(200);
    const iso = path.join(env.dir, 'agent.iso');
    await writeFile(iso, Buffer.from(res.data));

    const disk = path.join(env.dir, 'machine-disk.img');
    await copyFile(guest.path, disk);
    const sourceSha = await sha256File(disk);
    const size = 2048 * MiB;

    t = Date.now();
    const first = bootFromIso(iso, disk, path.join(env.dir, 'console-1.log'));
    machines.push(first);
    const id = await until('the agent enrolled', () => / migration (agent-m-[0-9a-f]{20})/.exec(first.console())?.[1], 300_000);
    timings.bootToEnrolled = Date.now() - t;
    expect(first.console()).toContain('768 MiB of memory');

    const waiting = await waitForMigration(api.http, id, { done: (s) => s.agent?.awaitingConfirmation === true, timeoutMs: 60_000 });
    expect(waiting.agent).toMatchObject({
      cpu: { sockets: 1, coresPerSocket: 2, threads: 2 },
      memoryBytes: 768 * MiB,
      firmware: 'bios',
      nics: [expect.objectContaining({ mac: NIC_MAC, link: true, addresses: ['10.0.2.15'] })],
      disks: [expect.objectContaining({ index: 0, name: 'vda', sizeBytes: size, serial: DISK_SERIAL })],
      guest: expect.objectContaining({ type: 'linux', distro: 'debian', version: '12', hostname: GUEST_HOSTNAME }),
    });
    expect(waiting.stage).toBe('Queued');

    await api.http.post(`/migrations/${id}/start`, {});
    t = Date.now();
    const mid = await waitForMigration(api.http, id, { done: (s) => s.disks[0]?.bytesDone >= 256 * MiB, timeoutMs: 900_000 });
    timings.toWatermark = Date.now() - t;
    const watermark = mid.disks[0].bytesDone;
    first.proc.kill('SIGKILL');
    await first.exited;

    t = Date.now();
    const second = bootFromIso(iso, disk, path.join(env.dir, 'console-2.log'));
    machines.push(second);
    expect(await until('the agent enrolled again', () => / migration (agent-m-[0-9a-f]{20})/.exec(second.console())?.[1], 300_000)).toBe(id);
    const done = await waitForMigration(api.http, id, { timeoutMs: 1_800_000 });
    timings.secondBootToCompleted = Date.now() - t;
    expect([done.status, done.error]).toEqual(['COMPLETED', undefined]);
    expect(done.agent.runs).toHaveLength(2);
    // The copy engine's checkpoint window: chunks in flight above the durable watermark when it was killed.
    expect(done.disks[0].bytesRead).toBeLessThanOrEqual(size - watermark + 64 * MiB);
    expect(done.warnings.join(' ')).not.toMatch(/changed on the machine/);
    const volume = await env.target.findVolume('p1', { migrationId: id, disk: '0' });
    expect(await sha256File(env.target.volumePath('p1', volume!.name))).toBe(sourceSha);
    expect(await sha256File(disk)).toBe(sourceSha);
    expect(done.guestConversion).toMatchObject({ converted: true });
    expect(done.validation.bootCheck).toMatchObject({ passed: true });
    expect(await until('the console says it completed', () => second.console().includes('migration completed'), 60_000)).toBe(true);
  }, 3_600_000);

  it('boots with UEFI too (OVMF): the agent comes up and reports the firmware', async () => {
    const template = await api.http.post('/agent-templates', { name: 'uefi machines', target: { project: 'p1', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] } });
    const res = await api.http.get(`/agent-templates/${template.data.id}/iso`, { responseType: 'arraybuffer' });
    const iso = path.join(env.dir, 'agent-uefi.iso');
    await writeFile(iso, Buffer.from(res.data));
    const firmware = selectUefiFirmware({ machine: 'pc-q35', secureBoot: false });
    const vars = path.join(env.dir, 'uefi-vars.fd');
    await copyFile(firmware.varsTemplate, vars);
    const disk = path.join(env.dir, 'uefi-machine-disk.img');
    await makeDiskImage(disk, 16 * MiB);
    const t = Date.now();
    const m = bootFromIso(iso, disk, path.join(env.dir, 'console-uefi.log'), { code: firmware.code, vars });
    machines.push(m);
    const line = await until('the agent reported the machine', () => m.console().split('\n').find((l) => l.includes('this machine:')), 300_000);
    timings.uefiBootToAgent = Date.now() - t;
    expect(line).toMatch(/768 MiB of memory, 1 NIC\(s\), 1 disk\(s\), firmware uefi/);
    m.proc.kill('SIGKILL');
    await m.exited;
  }, 600_000);

  it('a Windows machine: named from its registry; its disk, changed between two boots, is detected and copied again', async () => {
    const template = await api.http.post('/agent-templates', {
      name: 'windows servers',
      target: { project: 'p1', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] },
      guest: { convert: 'skip' },
      autoStart: true,
    });
    const res = await api.http.get(`/agent-templates/${template.data.id}/iso`, { responseType: 'arraybuffer' });
    const iso = path.join(env.dir, 'agent-windows.iso');
    await writeFile(iso, Buffer.from(res.data));
    // An MBR disk: the NTFS volume with Windows' registry (32 MiB), then 95 MiB of random data.
    const disk = path.join(env.dir, 'windows-disk.img');
    await makeWindowsDisk(disk, 128 * MiB, {
      productName: 'Windows Server 2022 Standard', build: '20348', majorVersion: 10, minorVersion: 0, editionId: 'ServerStandard',
      installationType: 'Server', computerName: 'WIN-FILES02', hostname: 'win-files02', currentControlSet: 1,
    }, { partitioned: true });
    const identity = { uuid: '0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b', serial: 'WIN-DISK-0001' };

    let t = Date.now();
    const first = bootFromIso(iso, disk, path.join(env.dir, 'console-windows-1.log'), undefined, identity);
    machines.push(first);
    const id = await until('the agent enrolled', () => / migration (agent-m-[0-9a-f]{20})/.exec(first.console())?.[1], 300_000);
    timings.windowsBootToEnrolled = Date.now() - t;
    expect(first.console()).toMatch(/guest: windows windows 10\.0, name "win-files02"/);
    const mid = await waitForMigration(api.http, id, { done: (s) => s.disks[0]?.bytesDone >= 64 * MiB, timeoutMs: 600_000 });
    expect(mid.agent.guest).toMatchObject({
      type: 'windows', productName: 'Windows Server 2022 Standard', edition: 'ServerStandard', build: '20348',
      installationType: 'Server', computerName: 'WIN-FILES02', hostname: 'win-files02',
    });
    first.proc.kill('SIGKILL');
    await first.exited;

    // Someone booted Windows in between: a byte below the watermark, in the data partition, is different now.
    const at = 40 * MiB + 123;
    const f = await open(disk, 'r+');
    const b = Buffer.alloc(1);
    await f.read(b, 0, 1, at);
    await f.write(Buffer.from([b[0]! ^ 0x5a]), 0, 1, at);
    await f.close();
    const changedSha = await sha256File(disk);

    t = Date.now();
    const second = bootFromIso(iso, disk, path.join(env.dir, 'console-windows-2.log'), undefined, identity);
    machines.push(second);
    const done = await waitForMigration(api.http, id, { timeoutMs: 1_200_000 });
    timings.windowsSecondBootToCompleted = Date.now() - t;
    expect([done.status, done.error]).toEqual(['COMPLETED', undefined]);
    expect(done.agent.runs).toHaveLength(2);
    expect(done.warnings.join(' ')).toMatch(/disk 0 changed on the machine since an earlier boot of the agent copied \d+ bytes of it .* copying it again from the start/);
    const volume = await env.target.findVolume('p1', { migrationId: id, disk: '0' });
    expect(await sha256File(env.target.volumePath('p1', volume!.name))).toBe(changedSha);
    expect(await sha256File(disk)).toBe(changedSha);
    expect(await until('the console says the disk changed', () => second.console().includes('changed since the last boot'), 60_000)).toBe(true);
  }, 1_800_000);

  it('a revoked enrollment key: the agent says so on its console, and no migration appears', async () => {
    const template = await api.http.post('/agent-templates', { name: 'revoked', target: { project: 'p1', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] } });
    const res = await api.http.get(`/agent-templates/${template.data.id}/iso`, { responseType: 'arraybuffer' });
    const keyId = String(res.headers['x-enrollment-key-id']);
    const iso = path.join(env.dir, 'agent-revoked.iso');
    await writeFile(iso, Buffer.from(res.data));
    expect((await api.http.delete(`/agent-templates/${template.data.id}/enrollment-keys/${keyId}`)).status).toBe(200);
    const before = (await api.http.get('/migrations', { params: { kind: 'agent' } })).data;
    const disk = path.join(env.dir, 'revoked-machine-disk.img');
    await makeDiskImage(disk, 16 * MiB);
    const m = bootFromIso(iso, disk, path.join(env.dir, 'console-revoked.log'), undefined, { uuid: '3c2b1a09-8f7e-4d6c-9b5a-493827160504', serial: 'REVOKED-0001' });
    machines.push(m);
    const line = await until('refused', () => m.console().split('\n').find((l) => l.includes('REFUSED')), 300_000);
    expect(line).toMatch(new RegExp(`the enrollment key ${keyId} of template ${template.data.id} was revoked at \\d{4}-`));
    expect(m.console()).toContain("check the template's enrollment key on the destination");
    m.proc.kill('SIGKILL');
    await m.exited;
    const after = (await api.http.get('/migrations', { params: { kind: 'agent' } })).data;
    expect(JSON.stringify(after)).toBe(JSON.stringify(before));
  }, 600_000);
});
