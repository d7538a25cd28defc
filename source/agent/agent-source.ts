import type { SourceProvider } from '../source-provider';
import type { AgentGateway } from './agent-gateway';
import { openAgentDiskExport } from './agent-disk-export';
import { agentMachinePlan } from './agent-machine-plan';

/** How long opening a disk waits for the machine's agent (a reboot from the ISO takes minutes). */
export const AGENT_WAIT_MS = 20 * 60_000;

/**
 * Machines booted from the agent's ISO, as a SourceProvider: what the connected agent found is the plan, its disks
 * come through the gateway, and digests are computed on the machine. No power control, change tracking or snapshots.
 */
export function agentSource(gateway: AgentGateway, opts: { waitMs?: number } = {}): SourceProvider {
  const session = (machineId: string, signal?: AbortSignal) => gateway.session(machineId, { timeoutMs: opts.waitMs ?? AGENT_WAIT_MS, signal });
  return {
    kind: 'agent',
    planMachine: async (machineId) => agentMachinePlan(machineId, (await session(machineId)).machine),
    async openDisk(machineId, diskKey, o) {
      const s = await session(machineId, o.signal);
      return openAgentDiskExport(s, diskKey, o.connections ?? 4, () => gateway.current(machineId));
    },
    digestRange: async (machineId, diskKey, range) => (await session(machineId)).digestRange(diskKey, range),
  };
}
