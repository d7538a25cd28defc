/** The task queue migrations run on unless VMIGRATE_TASK_QUEUE says otherwise. */
export const DEFAULT_TASK_QUEUE = 'vmigrate';

/** What a worker host is called: VMIGRATE_HOST_ID, or the machine's hostname. Stable across the worker's restarts. */
export const HOST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/**
 * The task queue only the workers of one host poll, beside the shared one: work that must stay on that host (volumes
 * that are files on its disk) is scheduled here, and waits here while the host's worker restarts.
 */
export function hostTaskQueue(sharedQueue: string, hostId: string): string {
  if (!HOST_ID_PATTERN.test(hostId)) throw new Error(`a worker host id is 1-253 letters, digits, '.', '_' or '-' starting with a letter or digit (got '${hostId}')`);
  return `${sharedQueue}@${hostId}`;
}

/** A worker host a migration keeps its volume work on, and the task queue that reaches it. */
export interface WorkerHost {
  hostId: string;
  taskQueue: string;
}
