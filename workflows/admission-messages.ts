import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AgentMigrationInput, ColdMigrationInput, WarmMigrationInput } from '../shared/migration-input';
import type { AdmissionLimits, QueuePlace } from './admission-ledger';

/** The messages of the admission workflow, shared by the API (client side) and the migration workflows. */

export type AdmissionCandidate =
  | { migrationId: string; kind: 'cold' | 'warm'; input: ColdMigrationInput | WarmMigrationInput }
  /** A machine booted from the agent's ISO: it is its own source, so nothing is asked of a vSphere. */
  | { migrationId: string; kind: 'agent'; input: AgentMigrationInput };

/** The VM an outcome is about: a source's VM, or an agent's machine by its id and name. */
export type AdmissionSubject = { moref?: string; name?: string };

export interface AdmissionRequest {
  /** Who submits (recorded on every migration it starts). */
  actor: string;
  /** Idempotency-Key as `<caller>:<key>`, and a hash of the request body it came with. */
  idempotency?: { key: string; requestHash: string };
  /** The deployment's current limits (the API sends them, so a change applies from the next submission). */
  limits: AdmissionLimits;
  migrations: AdmissionCandidate[];
}

export type AdmissionOutcome =
  | { vm: AdmissionSubject; outcome: 'admitted'; migrationId: string; sourceVm: string; position?: number }
  | { vm: AdmissionSubject; outcome: 'refused'; conflict: 'vm' | 'quota' | 'not-found' | 'source'; reason: string; holder?: string };

export interface AdmissionResult {
  /** True when this answers an earlier request with the same Idempotency-Key (nothing new was started). */
  replayed: boolean;
  outcomes: AdmissionOutcome[];
}

export interface AdmissionView {
  live: number;
  queue: QueuePlace[];
  running: Array<{ migrationId: string; copySlots: number; project: string; sourceVm: string }>;
}

export const admitUpdate = defineUpdate<AdmissionResult, [AdmissionRequest]>('admit');
export const admissionQueueQuery = defineQuery<AdmissionView>('queue');
/** Migration → admission: its disk copies are done (its copy slots go back). */
export const copiesDoneSignal = defineSignal<[{ migrationId: string }]>('copiesDone');
/** Migration → admission: it has ended, however it ended (its VM and project slot go back). */
export const migrationEndedSignal = defineSignal<[{ migrationId: string }]>('migrationEnded');
/** Migration → admission: a migration created to be started later was started; it joins the line. */
export const replicationStartedSignal = defineSignal<[{ migrationId: string }]>('replicationStarted');
/** Admission → migration: it may leave Queued, copying `copySlots` disks at a time. */
export const copySlotsGrantedSignal = defineSignal<[{ copySlots: number }]>('copySlotsGranted');

/** Who starts a migration that was created to be started later. */
export interface StartReplicationRequest {
  actor: string;
}
/** API → migration: start a migration created with startReplication false (refused unless it waits for that). */
export const startReplicationUpdate = defineUpdate<{ started: true; actor: string }, [StartReplicationRequest]>('startReplication');

/** The admission workflow of a deployment: one per task queue, so separate deployments never share a ledger. */
export const admissionWorkflowId = (taskQueue: string) => `vmigrate-admission-${taskQueue}`;
