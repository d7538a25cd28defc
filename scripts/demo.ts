import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import axios from 'axios';
import pino from 'pino';
import { apiDepsFromConfig } from '../api/api-deps';
import { createApp } from '../api/app';
import { parseConfig } from '../config/vmigrate-config';
import { LocalTargetProvider } from '../targets/local/local-target-provider';
import { StaticIdentity, newApiToken, tokenHash } from '../identity/static-identity';
import { makeDiskImage, sha256File } from '../tools/disk-image';
import { ensureTestGuest } from '../tools/test-guest/test-guest';
import { coldMigrationStateQuery } from '../workflows/cold-migration-state';
import { freePort, startDevServer } from '../tools/temporal-dev-server';
import { startSimulator } from '../tools/vcsim/launch';
import { createVmigrateWorker } from '../workers/create-worker';

/**
 * `npm run demo`: a cold migration of a VM with a 1 GiB disk of real content, from the vSphere simulator into the
 * local target, submitted through the API, with progress printed and the target's checksum checked against the
 * source. `--keep` leaves everything running afterwards to look around (Temporal Web UI URL is printed).
 * `--guest` migrates the test guest instead (a Debian 12 that looks installed on VMware, tools/test-guest; built on
 * first use, a few minutes): it is inspected, converted with virt-v2v-in-place and boot-checked — minutes under TCG.
 */
async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const guestMode = process.argv.includes('--guest');
  const say = (msg: string) => console.log(`[demo] ${msg}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-demo-'));
  const logger = pino({ level: 'warn' });
  Runtime.install({ logger: new DefaultLogger('WARN') }); // keep the SDK's INFO lines out of the demo's output

  say('starting Temporal dev server');
  const temporal = await startDevServer({ uiPort: await freePort() });
  say(`Temporal at ${temporal.address}, Web UI at ${temporal.uiUrl}`);

  const diskMiB = guestMode ? 2048 : 1024;
  say(`starting the vSphere simulator with VM "demo-vm" (2 vCPU, 2 GiB, one ${diskMiB / 1024} GiB disk, one NIC)`);
  const sim = await startSimulator({
    spec: {
      vms: [
        {
          name: 'demo-vm',
          guestId: guestMode ? 'debian12_64Guest' : 'debian11_64Guest',
          firmware: 'bios',
          numCPUs: 2,
          memoryMB: 2048,
          powerState: 'poweredOn',
          disks: [{ capacityMiB: diskMiB }],
          nics: [{ network: 'VM Network', adapterType: 'vmxnet3' }],
        },
      ],
    },
    username: 'demo',
    password: 'demo-password',
  });
  let image = path.join(dir, 'demo-vm.img');
  if (guestMode) {
    image = (await ensureTestGuest('bios', { onBuildStart: () => say('building the test guest (debootstrap; once per recipe, a few minutes)') })).path;
  } else {
    await makeDiskImage(image, 1024 * 1024 * 1024);
  }
  await sim.uploadDiskImage('demo-vm', 0, image);
  const sourceSha = await sha256File(image);
  say(`source disk written (${guestMode ? 'the test guest: Debian 12 with open-vm-tools' : 'MBR, ext4, random data, holes'}): sha256 ${sourceSha}`);

  const passwordFile = path.join(dir, 'vc.password');
  await writeFile(passwordFile, 'demo-password', { mode: 0o600 });
  const config = parseConfig(
    {
      sources: { 'demo-vcenter': { url: sim.url, username: 'demo', passwordFile, insecure: true } },
      targets: { local: { driver: 'local', dataDir: path.join(dir, 'data') } },
      workDir: path.join(dir, 'data', 'work'),
    },
    dir,
  );
  const target = new LocalTargetProvider({ dataDir: path.join(dir, 'data') });
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  const worker = await createVmigrateWorker({ connection: nativeConnection, taskQueue: 'vmigrate', config, logger, targets: [target] });
  const workerRun = worker.run();
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  // The demo's own API token, known only to this process (static identity, hash only).
  const token = newApiToken();
  const identity = new StaticIdentity({ backend: 'static', tokens: [{ sha256: tokenHash(token), user: 'demo', projects: ['demo'], role: 'member' }] });
  const app = createApp(apiDepsFromConfig(config, { client, taskQueue: 'vmigrate', logger, identity }));
  const http = axios.create({ headers: { Authorization: `Bearer ${token}` } });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => resolve(s));
  });
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  say(`API at ${api}`);

  const body = {
    sourceId: 'demo-vcenter',
    vm: { name: 'demo-vm' },
    target: { project: 'demo', flavor: 'm1.medium', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'demo-net', preserveMac: true }] },
    ...(guestMode ? { guest: { convert: 'auto', bootCheck: { timeoutSeconds: 900 } } } : {}),
  };
  say(`POST /migrations ${JSON.stringify(body)}`);
  const { data: submitted } = await http.post(`${api}/migrations`, body);
  say(`accepted: ${submitted.id}`);

  let status: any;
  let lastLine = '';
  const started = Date.now();
  for (;;) {
    status = (await http.get(`${api}/migrations/${submitted.id}`)).data;
    const done = status.bytesDone / 1024 / 1024;
    const line = `${status.stage.padEnd(11)} ${done.toFixed(0).padStart(5)} / ${(status.bytesTotal / 1024 / 1024).toFixed(0)} MiB written`;
    if (line !== lastLine) say(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${line}`);
    lastLine = line;
    if (status.status !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const { data: ev } = await http.get(`${api}/migrations/${submitted.id}/events`);
  say('events: ' + ev.events.map((e: { name: string }) => e.name).join(' → '));

  let ok = status.status === 'COMPLETED';
  if (ok) {
    const volume = await target.getVolume('demo', `${submitted.id}-disk0`);
    const targetSha = await sha256File(target.volumePath(volume!.project, volume!.name));
    ok = targetSha === sourceSha;
    say(`target volume sha256 ${targetSha} ${ok ? '== source: identical' : '!= source: MISMATCH'}`);
    say(`instance: ${JSON.stringify(status.instance)}`);
    for (const w of status.warnings) say(`warning: ${w}`);
    const state = await client.workflow.getHandle(submitted.id).query(coldMigrationStateQuery);
    const gi = state.guestInspection;
    if (gi) say(`guest: ${gi.osFamily} ${gi.distro ?? ''} ${gi.version ?? ''} (${gi.firmware}, ${gi.partitionTable}), VMware tools ${gi.vmwareTools ? 'installed' : 'absent'}`);
    const conv = state.guestFix?.conversion;
    if (conv) say(`converted in ${(conv.durationMs / 1000).toFixed(0)} s (attempt ${conv.attempt}); boots from ${state.guestFix!.bootVolumes.map((v) => v.name).join(', ')}`);
    const boot = state.validation?.bootCheck;
    if (boot) say(`boot check: ${boot.passed ? 'login prompt reached' : `FAILED: ${boot.reason}`}${'durationMs' in boot ? ` in ${(boot.durationMs / 1000).toFixed(0)} s` : ''}`);
  } else {
    say(`migration ended ${status.status}: ${status.error}`);
  }

  const stop = async () => {
    await new Promise((r) => server.close(r));
    // The SDK's Runtime also reacts to SIGINT/SIGTERM by shutting workers down; only ask if it hasn't yet.
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun.catch(() => undefined);
    await connection.close();
    await nativeConnection.close();
    await sim.stop();
    await temporal.stop();
    await rm(dir, { recursive: true, force: true });
  };
  if (keep) {
    say(`still running (--keep): Web UI ${temporal.uiUrl}, API ${api}; Ctrl-C to stop`);
    process.once('SIGINT', () => void stop().then(() => process.exit(ok ? 0 : 1)));
    return;
  }
  await stop();
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
