import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type Client, type Workflow, type WorkflowStartOptions } from '@temporalio/client';
import { HttpProblem } from './problem';

/**
 * Asking a worker to read something the API has no credentials for (a source's inventory, a preflight). The read is
 * a short workflow on the deployment's task queue; its failure types become answers a client can act on.
 */
export interface WorkerRead {
  client: Client;
  taskQueue: string;
}

/** Failure types of a read that are about the source or target, not about us: 502 with their message. */
const REFUSED_BY_DEPENDENCY = new Set(['InvalidLogin', 'NoPermission', 'TargetAuthError', 'QuotaExceededError']);

function rootOf(err: unknown): { type?: string; message: string } {
  let e: unknown = err;
  let type: string | undefined;
  let message = err instanceof Error ? err.message : String(err);
  while (e instanceof Error) {
    const t = (e as { type?: unknown }).type;
    if (typeof t === 'string') type = t;
    message = e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return { type, message };
}

export async function runWorkerRead<W extends Workflow>(
  deps: WorkerRead,
  workflow: W,
  args: Parameters<W>,
  opts: { idPrefix: string; timeoutSeconds: number; what: string },
): Promise<Awaited<ReturnType<W>>> {
  try {
    const options = {
      taskQueue: deps.taskQueue,
      workflowId: `${opts.idPrefix}-${randomUUID()}`,
      args,
      // No worker polling the queue must not hang the request: the run times out and the caller hears why.
      workflowExecutionTimeout: `${opts.timeoutSeconds}s`,
    } as unknown as WorkflowStartOptions<W>;
    return (await deps.client.workflow.execute(workflow, options)) as Awaited<ReturnType<W>>;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const root = rootOf(err.cause);
    if (root.type === 'UnknownSourceError') throw new HttpProblem('not-found', root.message);
    if (root.type && REFUSED_BY_DEPENDENCY.has(root.type)) throw new HttpProblem('bad-gateway', `${opts.what}: ${root.message}`);
    if (err.cause?.name === 'TimeoutFailure' || /timed out/i.test(err.message)) {
      throw new HttpProblem('service-unavailable', `${opts.what}: no worker answered within ${opts.timeoutSeconds} s; is a vmigrate worker running on task queue '${deps.taskQueue}'?`, {}, { 'Retry-After': '10' });
    }
    throw new HttpProblem('service-unavailable', `${opts.what}: ${root.message}`, {}, { 'Retry-After': '10' });
  }
}
