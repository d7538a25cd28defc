import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { loadConfig } from '../config/vmigrate-config';
import { DEFAULT_TASK_QUEUE } from '../shared/task-queues';
import { apiDepsFromConfig } from './api-deps';
import { createApp } from './app';
import { serveEnrollment } from './agent-enrollment';

/** API process: `npm run api`. Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, VMIGRATE_TASK_QUEUE, VMIGRATE_CONFIG, VMIGRATE_TOKENS_FILE (static API tokens besides the config's), PORT. */
export async function runApi(): Promise<void> {
  const logger = pino({ name: 'vmigrate-api', level: process.env.LOG_LEVEL ?? 'info' });
  const config = loadConfig();
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  const app = createApp(
    apiDepsFromConfig(config, {
      client,
      namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: process.env.VMIGRATE_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
      logger,
      tokensFile: process.env.VMIGRATE_TOKENS_FILE,
    }),
  );
  const port = Number(process.env.PORT ?? 8080);
  const server = app.listen(port, () => logger.info({ port }, 'API listening'));
  // Machines booted from the agent's ISO enroll on a port of their own (HTTPS, the certificate the ISO pins).
  const enrollment = config.agents ? await serveEnrollment({ client, taskQueue: process.env.VMIGRATE_TASK_QUEUE ?? DEFAULT_TASK_QUEUE, agents: config.agents, logger, limits: config.admission }) : undefined;
  const stop = () => {
    enrollment?.close();
    server.close(() => void connection.close());
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  runApi().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
