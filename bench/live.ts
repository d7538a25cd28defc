/**
 * Live migration's downtime and cost: a guest that rewrites a fixed amount of random memory every second is
 * live-migrated between the two libvirt hosts of tools/libvirt-lab, through the product's libvirt driver (the steps
 * the liveMigration workflow runs), back and forth. Reported per trial: the downtime QEMU measured, the total time,
 * and the memory sent against the guest's memory size.
 *
 *   npm run bench:live      env: BENCH_TRIALS (3) BENCH_MEMORY_MIB (256) BENCH_DIRTY_MIB_PER_S (16)
 * Goals: downtime ≤ 500 ms (Nova's default live_migration_downtime), memory sent ≤ 1.5 × the guest's memory.
 * Last line: live_downtime_ms=<median QEMU-reported downtime>
 */
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { libvirtLiveMigrationDriver } from '../live/libvirt-live-migration-run';
import { LibvirtHosts } from '../targets/libvirt/libvirt-hosts';
import { counterDomainXml, ensureCounterGuest } from '../tools/live-guest/counter-guest';
import { MIGRATION_BRIDGE, startLibvirtPair } from '../tools/libvirt-lab/libvirt-pair';
import { vmigrateCacheDir } from '../tools/test-guest/test-guest-paths';
import { envNumber, median, MiB } from './bench-files';

async function main(): Promise<void> {
  const trials = envNumber('BENCH_TRIALS', 3);
  const memoryMiB = envNumber('BENCH_MEMORY_MIB', 256);
  const dirtyMiB = envNumber('BENCH_DIRTY_MIB_PER_S', 16);
  const work = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-bench-live-'));
  const [pair, guest] = await Promise.all([startLibvirtPair({ cacheRoot: vmigrateCacheDir() }), ensureCounterGuest(path.join(vmigrateCacheDir(), 'live-guest'))]);
  const downtimes: number[] = [];
  try {
    const hosts = new LibvirtHosts('bench', {
      driver: 'libvirt',
      hosts: pair.hosts.map((h) => ({ name: h.hostname, uri: h.uri, migrationAddress: h.address })),
      storagePool: 'default',
      sharedStorage: false,
      virtType: 'qemu',
      networks: {},
    });
    const driver = libvirtLiveMigrationDriver({ hosts, logDir: path.join(work, 'logs') });
    const [a] = pair.hosts;
    const virsh = (uri: string, ...args: string[]) => execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', stdio: 'pipe' });
    execFileSync('truncate', ['-s', '8M', path.join(a.imagesDir, 'bench-live.raw')]);
    virsh(a.uri, 'pool-refresh', 'default');
    const xml = path.join(work, 'domain.xml');
    writeFileSync(
      xml,
      counterDomainXml({
        name: 'bench-live',
        uuid: randomUUID(),
        memoryMiB,
        kernel: guest.kernel,
        initrd: guest.initrd,
        disk: '/var/lib/libvirt/images/bench-live.raw',
        consoleLog: '/var/log/libvirt/qemu/bench-live-console.log',
        bridge: MIGRATION_BRIDGE,
        dirtyMiB,
      }),
    );
    virsh(a.uri, 'define', xml);
    virsh(a.uri, 'start', 'bench-live');
    // Booted, and its dirtying loop running (it fills its source buffer first).
    await new Promise((r) => setTimeout(r, 15_000));
    console.log(`guest: ${memoryMiB} MiB of memory, rewriting ${dirtyMiB} MiB/s; ${trials} migrations, alternating hosts`);
    for (let t = 0; t < trials; t++) {
      const check = await driver.check({ serverId: 'bench-live', blockMigration: 'auto' });
      const started = Date.now();
      const s = await driver.start({ operationId: `bench-${t}-${randomUUID()}`, serverId: 'bench-live', source: check.server.host!, blockMigration: 'auto', after: 0 });
      const record = await driver.watch(
        { serverId: 'bench-live', requestId: s.requestId, after: 0 },
        { heartbeat: () => undefined, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: () => Date.now() },
      );
      const wall = Date.now() - started;
      const memSent = record.memory?.processedBytes ?? 0;
      downtimes.push(record.downtimeMs ?? NaN);
      console.log(
        `trial ${t + 1}: ${record.sourceCompute} → ${record.destCompute}: downtime ${record.downtimeMs} ms, migration ${record.durationMs} ms (${wall} ms from the start until the watch saw it end), ` +
          `memory sent ${(memSent / MiB).toFixed(1)} MiB = ${(memSent / (memoryMiB * MiB)).toFixed(2)} × memory${record.disk?.totalBytes ? `, disk copied ${(record.disk.processedBytes / MiB).toFixed(1)} of ${(record.disk.totalBytes / MiB).toFixed(1)} MiB` : ''}`,
      );
    }
    const worst = Math.max(...downtimes);
    console.log(`downtime goal ≤ 500 ms: ${worst <= 500 ? 'met' : 'not met'} (worst ${worst} ms)`);
  } finally {
    await pair.stop();
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`live_downtime_ms=${median(downtimes)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
