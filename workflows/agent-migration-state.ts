import { defineSignal } from '@temporalio/workflow';
import type { DiscoveredMachine } from '../source/agent/discovered-machine';
import type { ColdMigrationState } from './cold-migration-state';

/** A migration of a machine booted from the agent's ISO, as the `state` query answers it. */
export interface AgentMigrationState extends Omit<ColdMigrationState, 'kind'> {
  kind: 'agent';
  machine: {
    machineId: string;
    templateId: string;
    cpu: DiscoveredMachine['cpu'];
    memoryBytes: number;
    firmware: DiscoveredMachine['firmware'];
    nics: DiscoveredMachine['nics'];
    disks: DiscoveredMachine['disks'];
    guest: DiscoveredMachine['guest'];
    /** The agent runs (boots) that enrolled, oldest first: more than one means the machine rebooted mid-migration. */
    runs: Array<{ runId: string; at: string }>;
  };
  /** Waiting for someone to confirm it (templates without autoStart). */
  awaitingConfirmation?: boolean;
}

/** The agent enrolled again (the machine rebooted from the ISO): sent by the API, recorded in the status. */
export const agentEnrolledSignal = defineSignal<[{ runId: string; at: string }]>('agentEnrolled');
/** Confirms a migration that waits for it; the Temporal Web UI can send it (name: confirm, no input needed). */
export const confirmSignal = defineSignal<[{ actor?: string }?]>('confirm');
