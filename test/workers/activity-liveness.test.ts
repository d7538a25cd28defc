/**
 * Control calls carry a heartbeat timeout so that a task lost on its way to a stopping worker is retried within it; their
 * worker heartbeats for them while they run (workers/activity-liveness.ts). On the dev server, with real workers, the
 * activities run through the product's own control and transfer options: a call quiet for longer than its heartbeat
 * timeout completes in its first attempt (and, without the worker's heartbeats, fails with a heartbeat timeout: what a
 * task nobody runs gets); one that heartbeats now and then is not cut short between, and its retry starts from its
 * latest details; a long job that stalls after its progress still times out.
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
  async heartbeatNowAndThen(quietMs) {
    const { attempt, heartbeatDetails } = activityInfo();
    if (attempt > 1) return { attempt, startedWith: heartbeatDetails };
    Context.current().heartbeat({ at: 1 });
    await sleep(quietMs);
    Context.current().heartbeat({ at: 2 });
    await sleep(quietMs);
    throw new Error('the first attempt fails after two quiet spells');
  },
  async stallAfterProgress() {
    const { attempt, heartbeatDetails } = activityInfo();
    if (attempt > 1) return { attempt, startedWith: heartbeatDetails };
    Context.current().heartbeat({ at: 7 });
    // Stalled: no more heartbeats, until the server gives up on this attempt and the worker cancels it.
    await Context.current().cancelled.catch(() => undefined);
    throw new Error('stalled attempt cancelled');
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

  it('a control call that heartbeats now and then, quiet longer than its heartbeat timeout, runs on; its retry starts from its latest details', async () => {
    await expect(run('heartbeatNowAndThenWorkflow', [3000, '1s'], true)).resolves.toEqual({ attempt: 2, startedWith: { at: 2 } });
  });

  it('a long job that heartbeated and then stalled still times out (its worker does not heartbeat for it); its retry starts from its last details', async () => {
    await expect(run('stallAfterProgressWorkflow', [1], true)).resolves.toEqual({ attempt: 2, startedWith: { at: 7 } });
  });
});
