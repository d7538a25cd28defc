import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { apiDepsFromConfig } from '../api/api-deps';
import { createApp } from '../api/app';
import { loadConfig, parseConfig, type VmigrateConfig } from '../config/vmigrate-config';
import { DEFAULT_TASK_QUEUE } from '../shared/task-queues';
import { ensureAdminToken } from '../identity/admin-token';
import { REPO_ROOT, startDevServer, type DevServer } from '../tools/temporal-dev-server';
import { createVmigrateWorker } from '../workers/create-worker';
import { LAB_SOURCE_ID, startLabSource, type LabSource } from './lab-source';
import { installWorkerRuntime } from '../workers/worker-runtime';

/**
 * `npm start`: everything on one machine. Starts the Temporal dev server (SQLite under data/, Web UI on 8233) unless
 * TEMPORAL_ADDRESS names a cluster to use, then a worker and the API (PORT, default 8080). Ctrl-C stops all of it.
 */
async function main(): Promise<void> {
  const logger = pino({ name: 'vmigrate', level: process.env.LOG_LEVEL ?? 'info' });
  installWorkerRuntime(logger);
  const configFile = process.env.VMIGRATE_CONFIG ?? path.join(REPO_ROOT, 'vmigrate.config.json');
  const dataDir = process.env.VMIGRATE_DATA_DIR ?? path.join(REPO_ROOT, 'data');
  let config: VmigrateConfig;
  let lab: LabSource | undefined;
  if (existsSync(configFile)) config = loadConfig(configFile);
  else {
    // Nothing configured: the bundled simulator as a lab source and the local target, so the first minute works.
    lab = await startLabSource(path.join(dataDir, 'lab'));
    config = parseConfig({ sources: { [LAB_SOURCE_ID]: lab.sourceConfig }, targets: { local: { driver: 'local', dataDir } }, workDir: path.join(dataDir, 'work') }, REPO_ROOT);
    logger.warn({ configFile, source: LAB_SOURCE_ID, url: lab.sim.url }, `no configuration file: offering the bundled vSphere simulator as the lab source '${LAB_SOURCE_ID}' (not a real vSphere; see vmigrate.config.example.json for yours)`);
  }

  let devServer: DevServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    devServer = await startDevServer({
      port: Number(process.env.TEMPORAL_PORT ?? 7233),
      uiPort: Number(process.env.TEMPORAL_UI_PORT ?? 8233),
      // Beside the worker's scratch space (data/temporal.db by default).
      dbFile: path.join(path.dirname(config.workDir), 'temporal.db'),
    });
    address = devServer.address;
    logger.info({ address, ui: devServer.uiUrl }, 'Temporal dev server started');
  }
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  const taskQueue = process.env.VMIGRATE_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;

  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createVmigrateWorker({
    connection: nativeConnection,
    namespace,
    taskQueue,
    config,
    logger,
    ...(process.env.VMIGRATE_WORKFLOW_BUNDLE ? { workflowBundle: { codePath: process.env.VMIGRATE_WORKFLOW_BUNDLE } } : {}),
  });
  const workerRun = worker.run();

  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  // No API token configured yet: make an admin token, show it this once, and keep only its hash.
  const tokensFile = process.env.VMIGRATE_TOKENS_FILE ?? path.join(path.dirname(config.workDir), 'api-tokens.json');
  mkdirSync(path.dirname(tokensFile), { recursive: true });
  const adminToken = ensureAdminToken(config.identity, tokensFile);
  if (adminToken) {
    process.stdout.write(
      `\nCreated the first API token (user admin, role admin, every project). It is shown only now; ${tokensFile} keeps only its SHA-256:\n\n  ${adminToken}\n\nUse it as: curl -H 'Authorization: Bearer <token>' http://localhost:${process.env.PORT ?? 8080}/whoami\n\n`,
    );
  }
  const app = createApp(apiDepsFromConfig(config, { client, namespace, taskQueue, logger, tokensFile }));
  const port = Number(process.env.PORT ?? 8080);
  const http = app.listen(port, () => logger.info({ port }, 'API listening'));

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping');
    await new Promise((r) => http.close(r));
    // The SDK's Runtime also reacts to SIGINT/SIGTERM by shutting workers down; only ask if it hasn't yet.
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun.catch((err) => logger.error({ err }, 'worker stopped with an error'));
    await connection.close();
    await nativeConnection.close();
    await devServer?.stop();
    await lab?.stop();
    logger.info('stopped');
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
