import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTemporalCluster, type TemporalCluster } from '../../tools/temporal-cluster/temporal-cluster';

/**
 * Test clusters (tools/temporal-cluster: PostgreSQL and the four Temporal services as processes) run on the lab's
 * ports moved by this much, so a developer's `npm run lab:temporal-cluster` can keep running beside the suite.
 * One at a time: jest runs in band.
 */
export const TEST_CLUSTER_PORT_OFFSET = 200;

export interface TestCluster extends TemporalCluster {
  dir: string;
}

/**
 * A fresh cluster in a temporary directory (about 6 s once the server is built). VMIGRATE_TEST_CLUSTER_KEEP=1 keeps
 * the directory (service logs, PostgreSQL's data) for a look after a failure.
 */
export async function startTestCluster(name: string, opts: { webUi?: boolean } = {}): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `vmigrate-cluster-${name}-`));
  try {
    // mkdtemp makes it private; PostgreSQL runs as its own user and must reach its data directory inside.
    await chmod(dir, 0o755);
    const cluster = await startTemporalCluster(dir, { portOffset: TEST_CLUSTER_PORT_OFFSET, webUi: opts.webUi });
    return {
      ...cluster,
      dir,
      async stop() {
        await cluster.stop();
        if (process.env.VMIGRATE_TEST_CLUSTER_KEEP !== '1') await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * For a test file about the cluster itself: its own cluster, which the harness (test/harness/temporal.ts) and the
 * worker processes it spawns use for the rest of the file instead of the run's dev server.
 */
export function useOwnCluster(name: string): { cluster(): TestCluster } {
  let cluster: TestCluster | undefined;
  let previous: string | undefined;
  beforeAll(async () => {
    cluster = await startTestCluster(name);
    previous = process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS;
    process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = cluster.address;
  }, 600_000);
  afterAll(async () => {
    if (previous === undefined) delete process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS;
    else process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS = previous;
    await cluster?.stop();
  });
  return {
    cluster() {
      if (!cluster) throw new Error('the cluster is not up yet (use it inside tests)');
      return cluster;
    },
  };
}
