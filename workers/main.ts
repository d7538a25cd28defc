import { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { loadConfig } from '../config/vmigrate-config';
import { DEFAULT_TASK_QUEUE } from '../shared/task-queues';
import { createVmigrateWorker, type WorkerRole } from './create-worker';
import { serveProcessMetrics } from '../metrics/metrics-server';
import { installWorkerRuntime } from './worker-runtime';

function workerRole(value: string | undefined): WorkerRole {
  if (value === undefined || value === 'all' || value === 'workflows' || value === 'activities') return value ?? 'all';
  throw new Error(`VMIGRATE_WORKER_ROLE must be all, workflows or activities (got '${value}')`);
}

/**
 * Worker process: `npm run worker`. Environment: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE,
 * VMIGRATE_TASK_QUEUE, VMIGRATE_CONFIG (the config file with sources and target), VMIGRATE_WORKER_ROLE
 * (all | workflows | activities), VMIGRATE_HOST_ID (this host's name for its own task queue, default the hostname: keep
 * it the same across restarts, or work waiting for this host waits in vain), VMIGRATE_WORKFLOW_BUNDLE (a workflow bundle
 * made beforehand with the SDK's bundleWorkflowCode, instead of bundling at start), VMIGRATE_METRICS_ADDRESS (host:port:
 * this worker's copy metrics at /metrics), VMIGRATE_SDK_METRICS_ADDRESS (host:port: the Temporal SDK's own metrics).
 * SIGINT/SIGTERM drain and stop.
 */
export async function runWorker(): Promise<void> {
  const logger = pino({ name: 'vmigrate-worker', level: process.env.LOG_LEVEL ?? 'info' });
  installWorkerRuntime(logger);
  const metricsServer = process.env.VMIGRATE_METRICS_ADDRESS ? await serveProcessMetrics(process.env.VMIGRATE_METRICS_ADDRESS) : undefined;
  const config = loadConfig();
  const address = process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
  const connection = await NativeConnection.connect({ address });
  const taskQueue = process.env.VMIGRATE_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const worker = await createVmigrateWorker({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue,
    config,
    logger,
    role: workerRole(process.env.VMIGRATE_WORKER_ROLE),
    hostId: process.env.VMIGRATE_HOST_ID,
    ...(process.env.VMIGRATE_WORKFLOW_BUNDLE ? { workflowBundle: { codePath: process.env.VMIGRATE_WORKFLOW_BUNDLE } } : {}),
  });
  logger.info({ address, taskQueue, hostTaskQueue: worker.host?.taskQueue }, 'worker started');
  try {
    await worker.run();
  } finally {
    metricsServer?.close();
    await connection.close();
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
