import type { NovaLiveMigrations } from '../targets/openstack/nova-live-migrations';

/**
 * Why Nova says an operation on a server failed, read from the instance action of its request. Nova marks the
 * migration record ended while the compute still rolls back; the action's event records the error only once the
 * exception has left the compute manager, seconds later. So the reason is awaited for a while (`waitMs`); a failure
 * without one is still a failure, reported with what is known.
 */
export async function awaitFailureReason(
  nova: Pick<NovaLiveMigrations, 'failureOf'>,
  serverId: string,
  requestId: string | undefined,
  sleep: (ms: number) => Promise<void>,
  waitMs = 20_000,
): Promise<string | undefined> {
  if (!requestId) return undefined;
  for (let waited = 0; ; waited += 1000) {
    const why = await nova.failureOf(serverId, requestId);
    if (why || waited >= waitMs) return why;
    await sleep(1000);
  }
}
