/**
 * What the warm-migration benches run on: a real Temporal dev server, the simulator with a running VM whose disk
 * holds a real image, and a vmigrate worker in this process (the same pieces the tests use).
 */
import { startDevServer, type DevServer } from '../tools/temporal-dev-server';
import { createMigrationEnv, type MigrationEnv } from '../test/harness/migration-env';

export interface WarmBenchEnv {
  env: MigrationEnv;
  close(): Promise<void>;
}

export async function startWarmBenchEnv(name: string, vms: string[], diskMiB: number): Promise<WarmBenchEnv> {
  let server: DevServer | undefined;
  if (process.env.TEMPORAL_ADDRESS) process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS;
  else {
    server = await startDevServer({ logLevel: 'error' });
    process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = server.address;
  }
  const env = await createMigrationEnv(
    name,
    {
      vms: vms.map((vm) => ({ name: vm, guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: diskMiB }], nics: [] })),
    },
    { diskImages: Object.fromEntries(vms.map((vm) => [vm, diskMiB * 1024 * 1024])) },
  );
  await env.startWorker();
  return {
    env,
    async close() {
      await env.close();
      await server?.stop();
    },
  };
}
