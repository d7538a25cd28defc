import type { Logger } from 'pino';
import type { VmigrateConfig } from '../config/vmigrate-config';
import type { Converter } from '../guest/convert-on-clones';
import type { WorkerHost } from '../shared/task-queues';
import type { AgentGateway } from '../source/agent/agent-gateway';
import type { TargetProviders } from '../targets/target-providers';

/** What activities are built from (samples-typescript's activities-dependency-injection pattern). */
export interface ActivityDeps {
  config: VmigrateConfig;
  /** The configured targets; an activity picks its migration's by name. */
  targets: TargetProviders;
  logger: Logger;
  /** Hooks around the guest tools; production leaves them unset. */
  guestTools?: GuestToolHooks;
  /** The host this worker runs on and its own task queue (absent: the worker polls the shared queue only). */
  host?: WorkerHost;
  /** The gateway agents connect to, on the worker that runs one (agents.gateway in the configuration). */
  agentGateway?: AgentGateway;
}

export interface GuestToolHooks {
  /**
   * Wraps the converter (virt-v2v-in-place). Tests use it to make a conversion fail partway — by killing the real
   * virt-v2v process — and check the retry; never reachable from workflow input.
   */
  wrapConverter?: (convert: Converter) => Converter;
}
