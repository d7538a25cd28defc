import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

/** How long at most a worker heartbeats for an activity that has not heartbeated on its own. */
export const MAX_VOUCH_MS = 5 * 60_000;

/**
 * Liveness for activities that do not report progress (calls to vSphere, Nova, Cinder).
 *
 * A worker that stops can lose an activity task: a poll with a task already on its way is cancelled, and the server
 * has recorded the task as started by a worker that never runs it. Without a heartbeat timeout the task is tried again
 * only at its start-to-close timeout (minutes for a control call), and a rolling restart of the workers stalled a
 * migration that long. So control calls carry a short heartbeat timeout, and their worker heartbeats for them while
 * they run: a task nobody runs times out within that timeout and is retried; one a live worker runs never does.
 *
 * The worker vouches for an activity only until the activity heartbeats on its own, and for at most `maxVouchMs`: an
 * activity that reports progress is alive only as long as it reports it, so a stuck copy is still noticed. The worker's
 * heartbeat repeats the details the attempt started with (the previous attempt's last ones): a retry after it resumes
 * where the last attempt got to, not from the start.
 */
export function activityLiveness(maxVouchMs = MAX_VOUCH_MS): ActivityInterceptorsFactory {
  return (ctx) => ({ inbound: new VouchingInbound(ctx, maxVouchMs) });
}

class VouchingInbound implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly maxVouchMs: number,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const timeoutMs = this.ctx.info.heartbeatTimeoutMs;
    if (!timeoutMs || this.ctx.info.isLocal) return next(input);
    const send = this.ctx.heartbeat;
    let ownHeartbeat = false;
    // The activity's own heartbeats (through `heartbeat()` or its context) go out unchanged and end the vouching.
    Object.defineProperty(this.ctx, 'heartbeat', {
      value: (details?: unknown) => {
        ownHeartbeat = true;
        send(details);
      },
      configurable: true,
    });
    const started = Date.now();
    const timer = setInterval(
      () => {
        if (ownHeartbeat || Date.now() - started > this.maxVouchMs) clearInterval(timer);
        else send(this.ctx.info.heartbeatDetails);
      },
      Math.max(500, Math.floor(timeoutMs / 3)),
    );
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}
