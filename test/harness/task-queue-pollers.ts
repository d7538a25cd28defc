import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

export type PollerKind = 'activity' | 'workflow';

/** The identities polling a task queue for activity or workflow tasks, as the server saw them lately. */
export async function taskQueuePollers(client: Client, taskQueue: string, kind: PollerKind = 'activity'): Promise<string[]> {
  const { TaskQueueType, TaskQueueKind } = temporal.api.enums.v1;
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: kind === 'activity' ? TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY : TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (res.pollers ?? []).map((p) => p.identity ?? '');
}

/** Waits until every one of `identities` polls `taskQueue` (a worker process is up once it does). */
export async function waitForPollers(client: Client, taskQueue: string, identities: string[], kind: PollerKind = 'activity', timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const polling = await taskQueuePollers(client, taskQueue, kind);
    const missing = identities.filter((id) => !polling.includes(id));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`not polling ${taskQueue} for ${kind} tasks after ${timeoutMs} ms: ${missing.join(', ')} (polling: ${polling.join(', ') || 'none'})`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
