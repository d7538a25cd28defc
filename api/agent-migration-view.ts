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
  /** Who confirmed it and how: the API's start (an Update) or the `confirm` Signal (the Temporal Web UI's way). */
  confirmation?: { by: string; at: string; via: 'api' | 'signal' | 'template' };
}

export function agentMachineStatus(rec: WorkflowRecord): AgentMachineStatus {
  const input = rec.input as AgentMigrationInput;
  const runs = [{ runId: input.machine.bootId, at: new Date(rec.startedAt).toISOString() }];
  for (const m of rec.messages) {
    const run = m.input as { runId?: string; at?: string } | undefined;
    if (m.name === 'agentEnrolled' && run?.runId && !runs.some((r) => r.runId === run.runId)) runs.push({ runId: run.runId, at: run.at ?? new Date(m.time).toISOString() });
  }
  const first = rec.messages.find((m) => m.name === 'confirm' || m.name === 'startReplication');
  const confirmed = input.autoStart || !!first;
  const actor = (first?.input as { actor?: string } | undefined)?.actor;
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
    ...(first
      ? { confirmation: { by: actor ?? (first.name === 'confirm' ? 'temporal-ui' : 'unknown'), at: new Date(first.time).toISOString(), via: first.name === 'confirm' ? ('signal' as const) : ('api' as const) } }
      : input.autoStart
        ? { confirmation: { by: `template ${input.templateId} (autoStart)`, at: new Date(rec.startedAt).toISOString(), via: 'template' as const } }
        : {}),
  };
}
