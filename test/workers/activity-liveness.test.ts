/**
 * Control calls carry a heartbeat timeout so that a task lost on its way to a stopping worker is retried within it; their
 * worker heartbeats for them while they run (workers/activity-liveness.ts). On the dev server, with real workers: a
 * call quiet for longer than its heartbeat timeout completes in its first attempt (and, without the worker's
 * heartbeats, fails with a heartbeat timeout: what a task nobody runs gets); an activity that heartbeated on its own and
 * then stalls still times out, and its retries start from its last details even after a quiet, vouched attempt.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { activityInfo, Context } from '@temporalio/activity';
import { ActivityFailure, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { TimeoutType } from '@temporalio/common';
import { bundleWorkflowCode, Worker, type WorkflowBundle } from '@temporalio/worker';
import { activityLiveness } from '../../workers/activity-liveness';
import { connectClient, connectNative, uniqueTaskQueue } from '../harness/temporal';
import type { LivenessActivities } from './liveness-workflows';

const activities: LivenessActivities = {
  async quietCall(ms) {
    await sleep(ms);
    return { attempt: activityInfo().attempt };
  },
  async stallAfterProgress(quietMs) {
    const { attempt, heartbeatDetails } = activityInfo();
    if (attempt === 1) {
      Context.current().heartbeat({ at: 7 });
      // Stalled: no more heartbeats, until the server gives up on this attempt and the worker cancels it.
      await Context.current().cancelled.catch(() => undefined);
      throw new Error('stalled attempt cancelled');
    }
    if (attempt === 2) {
      await sleep(quietMs);
      throw new Error('the quiet attempt fails after its heartbeat timeout passed');
    }
    return { attempt, startedWith: heartbeatDetails };
  },
};

describe('activity liveness: the worker heartbeats for calls that do not', () => {
  let bundle: WorkflowBundle;
  let client: Awaited<ReturnType<typeof connectClient>>;

  beforeAll(async () => {
    client = await connectClient();
    bundle = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, 'liveness-workflows.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  async function run<T>(workflow: string, args: unknown[], liveness: boolean): Promise<T> {
    const taskQueue = uniqueTaskQueue('liveness');
    const connection = await connectNative();
    const worker = await Worker.create({ connection, taskQueue, workflowBundle: bundle, activities, ...(liveness ? { interceptors: { activity: [activityLiveness()] } } : {}) });
    try {
      return await worker.runUntil(client.client.workflow.execute(workflow, { taskQueue, workflowId: taskQueue, args }) as Promise<T>);
    } finally {
      await connection.close();
    }
  }

  it('a call quiet for three heartbeat timeouts completes in its first attempt', async () => {
    await expect(run('quietCallWorkflow', [3000, '1s'], true)).resolves.toEqual({ attempt: 1 });
  });

  it('without its worker heartbeating for it, the same call fails with a heartbeat timeout', async () => {
    const failed = await run('quietCallWorkflow', [3000, '1s'], false).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    const cause = (failed as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ActivityFailure);
    expect(cause!.cause).toBeInstanceOf(TimeoutFailure);
    expect((cause!.cause as TimeoutFailure).timeoutType).toBe(TimeoutType.HEARTBEAT);
  });

  it('an activity that heartbeated and then stalled times out; every retry starts from its last details', async () => {
    await expect(run('stallAfterProgressWorkflow', [3000, '1s'], true)).resolves.toEqual({ attempt: 3, startedWith: { at: 7 } });
  });
});
