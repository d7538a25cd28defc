import { CancellationScope, condition, getExternalWorkflowHandle, patched, setHandler } from '@temporalio/workflow';
import type { ColdMigrationInput } from '../shared/migration-input';
import { copiesDoneSignal, copySlotsGrantedSignal, migrationEndedSignal, replicationStartedSignal, startReplicationUpdate, type StartReplicationRequest } from './admission-messages';

/**
 * Marks migrations started by the admission workflow: they wait in Queued for its grant, copy as many disks at a
 * time as it grants, and tell it when their copies are done and when they end. Migrations started directly (and
 * runs from before admission) have no `admission` in their input and never wait.
 */
export const ADMISSION_PATCH = 'vmigrate-admission-v1';

export interface AdmissionSlot {
  /** Queued: resolves once the migration may start, with how many disks it may copy at once (all without admission). */
  granted(): Promise<number | undefined>;
  /** A migration created to be started later: waits for its start, then joins admission's line. */
  started(): Promise<void>;
  /** Whether it is waiting for its start. */
  readonly awaitingStart: boolean;
  /** The copy slots go back (the rest of the migration does not read the source host's disks in bulk). */
  copiesDone(): Promise<void>;
  /** The VM and the project slot go back; call once, however the migration ends. */
  ended(): Promise<void>;
}

/**
 * `startedBy`: the migration decides itself when it has been started (an agent's migration, by its confirmation);
 * otherwise the slot takes the startReplication Update of a migration created to be started later.
 */
export function admissionSlot(
  input: Pick<ColdMigrationInput, 'migrationId' | 'admission' | 'startReplication'>,
  opts: { startedBy?: () => boolean } = {},
): AdmissionSlot {
  const admission = input.admission && patched(ADMISSION_PATCH) ? input.admission : undefined;
  let copySlots: number | undefined;
  let copiesReturned = false;
  if (admission) {
    setHandler(copySlotsGrantedSignal, (g) => {
      copySlots ??= Math.max(1, g.copySlots);
    });
  }
  // Telling admission must happen even while the migration is being cancelled, and must never fail the migration.
  const tell = async (signal: typeof copiesDoneSignal | typeof migrationEndedSignal | typeof replicationStartedSignal) => {
    if (!admission) return;
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(admission.workflowId)
        .signal(signal, { migrationId: input.migrationId })
        .catch(() => undefined),
    );
  };
  // Created to be started later: the Update starts it (a validator refuses it otherwise).
  let awaitingStart = input.startReplication === false;
  let startedBy: StartReplicationRequest | undefined;
  if (!opts.startedBy) setHandler(
    startReplicationUpdate,
    (request) => {
      startedBy = request;
      awaitingStart = false;
      return { started: true as const, actor: request.actor };
    },
    {
      validator: (_request: StartReplicationRequest) => {
        if (!awaitingStart) throw new Error(input.startReplication === false ? `migration ${input.migrationId} was started already` : `migration ${input.migrationId} started when it was submitted; there is nothing to start`);
      },
    },
  );
  return {
    get awaitingStart() {
      return opts.startedBy ? !opts.startedBy() : awaitingStart;
    },
    async started() {
      if (input.startReplication !== false) return;
      await condition(opts.startedBy ?? (() => startedBy !== undefined));
      await tell(replicationStartedSignal);
    },
    async granted() {
      if (!admission) return undefined;
      await condition(() => copySlots !== undefined);
      return copySlots;
    },
    async copiesDone() {
      if (copiesReturned) return;
      copiesReturned = true;
      await tell(copiesDoneSignal);
    },
    async ended() {
      await tell(migrationEndedSignal);
    },
  };
}
