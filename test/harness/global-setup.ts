import os from 'node:os';
import path from 'node:path';
import type { Config } from '@jest/types';
import { freePort, startDevServer } from '../../tools/temporal-dev-server';
import { runSelectsOpenStack, startLabInBackground } from './openstack-lab';
import { startTestCluster } from './temporal-cluster';

/**
 * One real Temporal dev server (the CLI installed by scripts/setup.sh) for the whole jest run; every test uses its
 * own task queue. TEMPORAL_ADDRESS set by the caller means "use that server instead" (then pass its Web UI's URL as
 * VMIGRATE_TEST_TEMPORAL_UI_URL, or the tests that drive the UI are skipped).
 * The server also serves its embedded Web UI on a free port (the same process, so it costs next to nothing):
 * VMIGRATE_TEST_TEMPORAL_UI_URL, for test/harness/temporal-web-ui.ts.
 * VMIGRATE_TEST_TEMPORAL=cluster runs the files on a fresh Temporal cluster instead (PostgreSQL and the four services as
 * processes, and its Web UI; test/harness/temporal-cluster.ts): `npm test`'s second step runs the migration tests so.
 * When the run includes OpenStack tests, the OpenStack lab starts in the background (test/harness/openstack-lab.ts).
 */
export default async function globalSetup(globalConfig: Config.GlobalConfig): Promise<void> {
  process.env.VMIGRATE_TEST_WORKFLOW_BUNDLE = path.join(os.tmpdir(), `vmigrate-test-workflow-bundle-${process.pid}.js`);
  if (runSelectsOpenStack(globalConfig.testPathPatterns.patterns)) {
    (globalThis as { __vmigrateOpenStackLab?: unknown }).__vmigrateOpenStackLab = startLabInBackground();
  }
  if (process.env.TEMPORAL_ADDRESS) {
    process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS;
    return;
  }
  if (process.env.VMIGRATE_TEST_TEMPORAL === 'cluster') {
    const cluster = await startTestCluster('suite', { webUi: true });
    (globalThis as { __vmigrateCluster?: unknown }).__vmigrateCluster = cluster;
    process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = cluster.address;
    process.env.VMIGRATE_TEST_TEMPORAL_UI_URL = cluster.webUiUrl;
    return;
  }
  if (process.env.VMIGRATE_TEST_TEMPORAL && process.env.VMIGRATE_TEST_TEMPORAL !== 'dev-server') {
    throw new Error(`VMIGRATE_TEST_TEMPORAL must be dev-server or cluster (got '${process.env.VMIGRATE_TEST_TEMPORAL}')`);
  }
  const port = await freePort();
  let uiPort = await freePort();
  while (uiPort === port) uiPort = await freePort();
  const server = await startDevServer({ logLevel: 'error', port, uiPort });
  (globalThis as { __vmigrateDevServer?: unknown }).__vmigrateDevServer = server;
  process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = server.address;
  if (server.uiUrl) process.env.VMIGRATE_TEST_TEMPORAL_UI_URL = server.uiUrl;
}
