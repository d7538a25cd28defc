import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

/** The longest start-to-close timeout of an activity its worker heartbeats for (the control calls' five minutes). */
export const MAX_VOUCHED_START_TO_CLOSE_MS = 5 * 60_000;

/**
 * Liveness for short calls (to vSphere, Nova, Cinder) that do not report progress, or only now and then.
 *
 * A worker that stops can lose an activity task: a poll with a task already on its way is cancelled, and the server
 * has recorded the task as started by a worker that never runs it. Without a heartbeat timeout the task is tried again
 * only at its start-to-close timeout (five minutes for a control call), and a rolling restart of the workers could
 * stall a migration that long. So control calls carry a short heartbeat timeout, and their worker heartbeats for them
 * while they run: a task nobody runs times out within that timeout and is retried; one a live worker runs never does.
 *
 * Only for activities whose start-to-close timeout is at most `maxStartToCloseMs`: a hang of such a call is still
 * ended by that timeout. A long job (a copy, a conversion) is alive only as long as it heartbeats itself, so a stuck
 * one is still noticed. The worker's heartbeat repeats the activity's latest details (those it started with, from the
 * previous attempt, until it sends its own): a retry after it resumes where the last attempt got to.
 */
export function activityLiveness(maxStartToCloseMs = MAX_VOUCHED_START_TO_CLOSE_MS): ActivityInterceptorsFactory {
  return (ctx) => ({ inbound: new VouchingInbound(ctx, maxStartToCloseMs) });
}

class VouchingInbound implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly maxStartToCloseMs: number,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { heartbeatTimeoutMs, startToCloseTimeoutMs, isLocal } = this.ctx.info;
    if (!heartbeatTimeoutMs || isLocal || !startToCloseTimeoutMs || startToCloseTimeoutMs > this.maxStartToCloseMs) return next(input);
    const send = this.ctx.heartbeat;
    let latest: unknown = this.ctx.info.heartbeatDetails;
    let ownSinceTick = false;
    // The activity's own heartbeats (through `heartbeat()` or its context) go out unchanged; the worker remembers them.
    Object.defineProperty(this.ctx, 'heartbeat', {
      value: (details?: unknown) => {
        latest = details;
        ownSinceTick = true;
        send(details);
      },
      configurable: true,
    });
    const timer = setInterval(
      () => {
        if (!ownSinceTick) send(latest);
        ownSinceTick = false;
      },
      Math.max(500, Math.floor(heartbeatTimeoutMs / 3)),
    );
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}
