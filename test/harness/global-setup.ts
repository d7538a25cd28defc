import { startDevServer } from '../../tools/temporal-dev-server';

/**
 * One real Temporal dev server (the CLI installed by scripts/setup.sh) for the whole jest run; every test uses its
 * own task queue. TEMPORAL_ADDRESS set by the caller means "use that server instead".
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEMPORAL_ADDRESS) {
    process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS;
    return;
  }
  const server = await startDevServer({ logLevel: 'error' });
  (globalThis as { __vmigrateDevServer?: unknown }).__vmigrateDevServer = server;
  process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = server.address;
}
