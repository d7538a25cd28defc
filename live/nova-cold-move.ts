import { TargetRequestError } from '../targets/target-errors';
import { ColdMoveError } from './live-migration-errors';
import { awaitFailureReason } from './nova-failure-reason';
import type { NovaHostOperations } from './nova-host-operations';

/**
 * A stopped server moved off its host by Nova's cold migration. A drain empties a host of every server, and a
 * stopped one cannot be live-migrated (there is no running guest to copy), but Nova moves it, disks and all, while it
 * is off: `migrate`, then `confirmResize` once it waits in VERIFY_RESIZE on the destination. It stays stopped.
 *
 * Idempotent: each look starts from where the server is and what it is doing, so an attempt run again after a worker
 * died confirms, waits or asks once more as the server's state says; `requested` (heartbeated) keeps a retry from
 * asking Nova twice for the same move.
 */
export interface ColdMoveProgress {
  /** Nova's request id of the `migrate` this move asked for. */
  requestId?: string;
  requested: boolean;
  confirmed: boolean;
}

export interface ColdMoveHooks {
  heartbeat(progress: ColdMoveProgress): void;
  sleep(ms: number): Promise<void>;
}

export async function moveStoppedServer(
  ops: NovaHostOperations,
  input: { serverId: string; source: string; destination?: string; resumed?: ColdMoveProgress },
  hooks: ColdMoveHooks,
): Promise<{ to: string }> {
  const progress: ColdMoveProgress = input.resumed ?? { requested: false, confirmed: false };
  for (;;) {
    const server = await ops.nova.server(input.serverId);
    hooks.heartbeat(progress);
    if (server.status === 'ERROR') {
      const why = await awaitFailureReason(ops.nova, input.serverId, progress.requestId, hooks.sleep);
      throw new ColdMoveError(`server ${server.name} went to ERROR while it was cold-migrated off ${input.source}`, 'Read the instance action (openstack server event list) and reset or rebuild the server', why);
    }
    if (server.status === 'VERIFY_RESIZE' && !server.taskState) {
      // Confirming is asynchronous: the server shows VERIFY_RESIZE until its compute has removed the source's copy.
      if (!progress.confirmed) {
        await ops.nova.confirmResize(input.serverId).catch((err: unknown) => {
          // Confirmed already (by an attempt that died before it could say so): Nova has no finished move left.
          if (!(err instanceof TargetRequestError && /has not been resized/i.test(err.message))) throw err;
        });
        progress.confirmed = true;
        hooks.heartbeat(progress);
      }
      await hooks.sleep(1000);
      continue;
    }
    if (server.taskState) {
      await hooks.sleep(1000);
      continue;
    }
    if (server.status === 'SHUTOFF' && server.host && server.host !== input.source) return { to: server.host };
    if (server.status !== 'SHUTOFF') {
      throw new ColdMoveError(
        `server ${server.name} is ${server.status} on ${server.host ?? 'no host'}, not stopped: a cold migration moves only stopped servers`,
        server.status === 'ACTIVE' ? 'It was started meanwhile: drain the host again, and it is live-migrated' : 'Bring it to ACTIVE or SHUTOFF and drain the host again',
      );
    }
    if (progress.requested) {
      // Asked before, and back on its source with nothing under way: Nova refused or rolled the move back.
      const last = (await ops.nova.coldMigrations(input.serverId))[0];
      if (last && ['error', 'failed', 'cancelled'].includes(last.status)) {
        const why = await awaitFailureReason(ops.nova, input.serverId, progress.requestId, hooks.sleep);
        throw new ColdMoveError(`the cold migration of server ${server.name} off ${input.source} ended ${last.status}`, 'See why in its instance action; free a destination that can take it and drain again', why);
      }
      await hooks.sleep(1000);
      continue;
    }
    progress.requestId = await ops.nova.coldMigrate(input.serverId, input.destination ? { host: input.destination } : {});
    progress.requested = true;
    hooks.heartbeat(progress);
  }
}
