import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { loadConfig } from '../config/vmigrate-config';
import { DEFAULT_TASK_QUEUE } from '../shared/task-queues';
import { targetCatalog } from '../targets/target-catalog';
import { createApp } from './app';

/** API process: `npm run api`. Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, VMIGRATE_TASK_QUEUE, VMIGRATE_CONFIG, PORT. */
export async function runApi(): Promise<void> {
  const logger = pino({ name: 'vmigrate-api', level: process.env.LOG_LEVEL ?? 'info' });
  const config = loadConfig();
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  const app = createApp({
    client,
    taskQueue: process.env.VMIGRATE_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    sourceIds: Object.keys(config.sources),
    targets: targetCatalog(config),
    logger,
  });
  const port = Number(process.env.PORT ?? 8080);
  const server = app.listen(port, () => logger.info({ port }, 'API listening'));
  const stop = () => server.close(() => void connection.close());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  runApi().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
