import { NbdClient } from '../../nbd/nbd-client';
import type { DiskExport } from '../disk-export';
import { ExportSizeMismatchError } from '../disk-export';
import type { AgentSession } from './agent-gateway';

/**
 * An agent's disk as a DiskExport: NBD connections through the gateway's socket for the disk. A connection that
 * breaks is replaced only within the same run of the agent; once the agent has rebooted, its disk may have changed, so
 * reconnecting fails (AgentRunChangedError) and the copy's next attempt checks the disk before going on.
 */
export class AgentRunChangedError extends Error {
  override name = 'AgentRunChangedError';
}

export async function openAgentDiskExport(session: AgentSession, disk: number, connections: number, current: () => AgentSession | undefined): Promise<DiskExport> {
  const facts = session.machine.disks.find((d) => d.index === disk);
  if (!facts) throw new Error(`machine ${session.machineId} has no disk ${disk}`);
  const socketPath = session.diskSocket(disk);
  const conns: NbdClient[] = [];
  let closed = false;
  try {
    for (let i = 0; i < connections; i++) conns.push(await NbdClient.connect({ socketPath, connectTimeoutMs: 60_000 }));
  } catch (err) {
    await Promise.allSettled(conns.map((c) => c.close()));
    throw err;
  }
  if (conns[0].size !== facts.sizeBytes) {
    await Promise.allSettled(conns.map((c) => c.close()));
    throw new ExportSizeMismatchError(`the agent serves disk ${disk} with ${conns[0].size} bytes but reported ${facts.sizeBytes}`);
  }
  const size = conns[0].size;
  return {
    size,
    connections: conns,
    socketPath,
    async reconnect(index) {
      if (closed) throw new Error(`export of disk ${disk} is closed`);
      const now = current();
      if (!now || now.runId !== session.runId || !now.alive) {
        throw new AgentRunChangedError(`the agent of machine ${session.machineId} is no longer the run that served this copy (it rebooted or disconnected)`);
      }
      const fresh = await NbdClient.connect({ socketPath: now.diskSocket(disk), connectTimeoutMs: 60_000 });
      const old = conns[index];
      conns[index] = fresh;
      void old?.close().catch(() => undefined);
      return fresh;
    },
    async close() {
      closed = true;
      await Promise.allSettled(conns.map((c) => c.close()));
    },
  };
}
