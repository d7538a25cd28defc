import type { AgentMigrationInput } from '../shared/migration-input';
import type { WorkflowRecord } from './workflow-history';

/** What GET /migrations/:id adds for a machine booted from the agent's ISO, read from the migration's history. */
export interface AgentMachineStatus {
  machineId: string;
  templateId: string;
  cpu: AgentMigrationInput['machine']['cpu'];
  memoryBytes: number;
  firmware: string;
  nics: AgentMigrationInput['machine']['nics'];
  disks: AgentMigrationInput['machine']['disks'];
  guest: AgentMigrationInput['machine']['guest'];
  /** Each boot of the agent that enrolled: more than one means the machine rebooted and the migration resumed. */
  runs: Array<{ runId: string; at: string }>;
  /** Waiting for a confirmation (POST /migrations/:id/start, or the `confirm` Signal). */
  awaitingConfirmation: boolean;
}

export function agentMachineStatus(rec: WorkflowRecord): AgentMachineStatus {
  const input = rec.input as AgentMigrationInput;
  const runs = [{ runId: input.machine.bootId, at: new Date(rec.startedAt).toISOString() }];
  for (const m of rec.messages) {
    const run = m.input as { runId?: string; at?: string } | undefined;
    if (m.name === 'agentEnrolled' && run?.runId && !runs.some((r) => r.runId === run.runId)) runs.push({ runId: run.runId, at: run.at ?? new Date(m.time).toISOString() });
  }
  const confirmed = input.autoStart || rec.messages.some((m) => m.name === 'confirm' || m.name === 'startReplication');
  return {
    machineId: input.machineId,
    templateId: input.templateId,
    cpu: input.machine.cpu,
    memoryBytes: input.machine.memoryBytes,
    firmware: input.machine.firmware,
    nics: input.machine.nics,
    disks: input.machine.disks,
    guest: input.machine.guest,
    runs,
    awaitingConfirmation: rec.status === 'RUNNING' && !confirmed,
  };
}
