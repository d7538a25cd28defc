import os from 'node:os';
import { NativeConnection, Worker, type State, type WorkflowBundleOption } from '@temporalio/worker';
import type { Logger } from 'pino';
import { activityLiveness } from './activity-liveness';
import { createActivities, type GuestToolHooks } from '../activities';
import type { VmigrateConfig } from '../config/vmigrate-config';
import { hostTaskQueue, type WorkerHost } from '../shared/task-queues';
import { removeStaleExportDirs } from '../source/disk-export';
import { AgentGateway } from '../source/agent/agent-gateway';
import { agentCertificate, agentSessionKey } from '../source/agent/agent-trust';
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
  /** How many disk copies and other activities one worker runs at once (on each of its two task queues). */
  maxConcurrentActivities?: number;
  /**
   * `all` (default) runs workflows and activities; `activities` suits hosts placed near the source or target storage,
   * `workflows` a small orchestration-only process.
   */
  role?: WorkerRole;
  /** This host's name for its own task queue (default: the hostname); the same after a restart. */
  hostId?: string;
}

export type WorkerRole = 'all' | 'workflows' | 'activities';

export const WORKFLOWS_PATH = require.resolve('../workflows');

/** A vmigrate worker: one Temporal worker on the shared task queue and, running activities, one on its host's queue. */
export interface VmigrateWorker {
  /** The host whose task queue this worker also polls (absent for a workflows-only worker). */
  readonly host?: WorkerHost;
  run(): Promise<void>;
  shutdown(): void;
  getState(): State;
}

/**
 * A worker serves the migration workflows and/or their activities on one task queue. Running activities, it also
 * polls its host's task queue (shared/task-queues.ts), where migrations whose volumes live on this host send their
 * volume work; a worker restarted on the same host picks that work up again.
 */
export async function createVmigrateWorker(opts: VmigrateWorkerOptions): Promise<VmigrateWorker> {
  const role = opts.role ?? 'all';
  if (role !== 'workflows') await removeStaleExportDirs(opts.config.workDir);
  const hostId = opts.hostId ?? os.hostname();
  const host: WorkerHost | undefined = role === 'workflows' ? undefined : { hostId, taskQueue: hostTaskQueue(opts.taskQueue, hostId) };
  const targets = new TargetProviders(opts.config, opts.logger, opts.targets);
  const workflows = opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH };
  // The worker of the gateway's host runs the gateway agents connect to (and every step that reads their machines).
  const agents = opts.config.agents;
  let agentGateway: AgentGateway | undefined;
  if (agents && host && host.hostId === agents.gateway.hostId) {
    const { cert, key } = agentCertificate(agents);
    agentGateway = new AgentGateway({ cert, key, sessionKey: agentSessionKey(agents), logger: opts.logger });
    const port = await agentGateway.listen(agents.gateway.port, agents.gateway.host);
    opts.logger.info({ port, address: agents.gateway.address }, 'agent gateway listening');
  }
  const activities = role === 'workflows' ? undefined : createActivities({ config: opts.config, targets, logger: opts.logger, guestTools: opts.guestTools, host, agentGateway });
  const common = {
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    // Operators see which host ran an activity in its history events.
    identity: `${process.pid}@${hostId}`,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 8,
    // Heartbeats carry the resume watermark: send them at least this often even with long heartbeat timeouts.
    maxHeartbeatThrottleInterval: '2s' as const,
    interceptors: { activity: [activityLiveness()] },
  };
  const shared = await Worker.create({
    ...common,
    taskQueue: opts.taskQueue,
    ...(role !== 'activities' ? workflows : {}),
    ...(activities ? { activities } : {}),
  });
  const own = host && activities ? await Worker.create({ ...common, taskQueue: host.taskQueue, activities }) : undefined;
  const workers = own ? [shared, own] : [shared];
  return {
    host,
    async run() {
      // One stopping (shutdown, or a fatal error) stops the other: a half-running worker would hold tasks it never runs.
      const stopOthers = (w: Worker) => {
        for (const other of workers) if (other !== w && other.getState() === 'RUNNING') other.shutdown();
      };
      try {
        await Promise.all(workers.map((w) => w.run().finally(() => stopOthers(w))));
      } finally {
        await agentGateway?.close();
      }
    },
    shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
    getState: () => shared.getState(),
  };
}
