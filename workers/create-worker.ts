import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities, type GuestToolHooks } from '../activities';
import type { VmigrateConfig } from '../config/vmigrate-config';
import { removeStaleExportDirs } from '../source/disk-export';
import type { TargetProvider } from '../targets/target-provider';
import { TargetProviders } from '../targets/target-providers';

export interface VmigrateWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  config: VmigrateConfig;
  logger: Logger;
  /** A pre-built workflow bundle (tests build one and share it); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Ready-made providers for some targets (tests); the others are built from the configuration. */
  targets?: TargetProvider[];
  /** Hooks around the guest tools (tests only: e.g. kill the first conversion partway). */
  guestTools?: GuestToolHooks;
  /** How many disk copies and other activities one worker runs at once. */
  maxConcurrentActivities?: number;
  /**
   * `all` (default) runs workflows and activities; `activities` suits hosts placed near the source or target storage,
   * `workflows` a small orchestration-only process.
   */
  role?: WorkerRole;
}

export type WorkerRole = 'all' | 'workflows' | 'activities';

export const WORKFLOWS_PATH = require.resolve('../workflows');

/** A worker serves the migration workflows and/or their activities on one task queue. */
export async function createVmigrateWorker(opts: VmigrateWorkerOptions): Promise<Worker> {
  const role = opts.role ?? 'all';
  if (role !== 'workflows') await removeStaleExportDirs(opts.config.workDir);
  const targets = new TargetProviders(opts.config, opts.logger, opts.targets);
  const workflows = opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH };
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue,
    ...(role !== 'activities' ? workflows : {}),
    ...(role !== 'workflows' ? { activities: createActivities({ config: opts.config, targets, logger: opts.logger, guestTools: opts.guestTools }) } : {}),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 8,
    // Heartbeats carry the resume watermark: send them at least this often even with long heartbeat timeouts.
    maxHeartbeatThrottleInterval: '2s',
  });
}
