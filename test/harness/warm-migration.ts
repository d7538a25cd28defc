import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { GuestOptions, WarmMigrationInput, WarmOptions } from '../../shared/migration-input';
import { MigrationKind, MigrationState, SourceVm } from '../../shared/search-attributes';
import { warmMigrationStateQuery, type WarmMigrationState } from '../../workflows/warm-migration-state';
import type { MigrationEnv } from './migration-env';

/** Starts a warm migration straight through the client (tests that need the workflow's `tuning` argument). */
export async function startWarmMigration(
  env: MigrationEnv,
  opts: { id: string; vm: string; warm: WarmOptions; guest?: GuestOptions; project?: string; heartbeatTimeoutSeconds?: number },
): Promise<WorkflowHandle> {
  const input: WarmMigrationInput = {
    migrationId: opts.id,
    sourceId: 'sim',
    vm: { name: opts.vm },
    target: { project: opts.project ?? 'proj-warm', flavor: 'm1.small', volumeType: 'standard', networks: [] },
    warm: opts.warm,
    // The warm tests are about syncing; conversion (the same activities) is covered by the guest end-to-end test, and
    // the synthetic test disks hold no bootable guest anyway.
    guest: opts.guest ?? { convert: 'skip' },
  };
  return env.client.workflow.start('warmMigration', {
    workflowId: opts.id,
    taskQueue: env.taskQueue,
    args: [input, undefined, { heartbeatTimeoutSeconds: opts.heartbeatTimeoutSeconds ?? 30 }],
    typedSearchAttributes: [
      { key: MigrationState, value: 'Queued' },
      { key: MigrationKind, value: 'warm' },
      { key: SourceVm, value: `sim/${opts.vm}` },
    ],
  });
}

/** Polls the `state` query until `done` holds; fails early (with the state) if the migration ends first. */
export async function waitForWarmState(
  env: MigrationEnv,
  id: string,
  done: (s: WarmMigrationState) => boolean,
  timeoutMs = 90_000,
): Promise<WarmMigrationState> {
  const deadline = Date.now() + timeoutMs;
  let last: WarmMigrationState | undefined;
  let lastError: unknown;
  for (;;) {
    const handle = env.client.workflow.getHandle(id);
    try {
      last = await handle.query(warmMigrationStateQuery);
      lastError = undefined;
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
      // Between runs (continue-as-new) or before the first task a query can fail; a finished workflow cannot recover.
      const { status } = await handle.describe();
      if (status.name !== 'RUNNING' && status.name !== 'CONTINUED_AS_NEW') throw new Error(`migration ${id} ended ${status.name}: ${String(err)}`);
    }
    if (Date.now() > deadline) {
      const queryFailed = lastError ? `; the last query failed: ${describeQueryError(lastError)}` : '';
      throw new Error(`migration ${id}: condition not reached in ${timeoutMs} ms; last state ${JSON.stringify(last)}${queryFailed}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** The VM's live disk file in the simulator's datastore (where "guest writes" go). */
export function liveDiskFile(env: MigrationEnv, vmIndex: number, diskIndex = 0): string {
  return path.join(env.sim.datastoreDir, env.sim.vms[vmIndex].disks[diskIndex].flatPath);
}

/** A failed query's message with its causes (a gRPC status hides its reason one level down). */
function describeQueryError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = e.cause) parts.push(`${e.name}: ${e.message}`);
  return parts.join(' <- ') || String(err);
}
