import { Context } from '@temporalio/activity';
import type { ClaimedVm } from '../workflows/admission-ledger';
import type { VmSelector } from '../shared/migration-input';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';
import { withVmSession } from '../source/vsphere/vm-session';

/** Activities of the admission workflow: which VM a submission names, and which holders have ended unannounced. */
export function createAdmissionActivities(deps: ActivityDeps) {
  return {
    /** The VM a submission names, by name or moref, as the admission ledger keys it (read-only, one vSphere call set). */
    async resolveSourceVm(input: { sourceId: string; vm: VmSelector }): Promise<ClaimedVm> {
      return failuresTranslated(() =>
        withVmSession(deps.config, input.sourceId, input.vm, async ({ client, vm }) => {
          const hw = await client.getVmHardware(vm);
          return {
            sourceId: input.sourceId,
            moref: vm.value,
            name: hw.name,
            host: hw.host,
            datastores: [...new Set(hw.disks.map((d) => d.datastore).filter(Boolean))].sort(),
            disks: hw.disks.length,
            capacityBytes: hw.disks.reduce((s, d) => s + d.capacityBytes, 0),
          };
        }),
      );
    },

    /**
     * The migrations among `ids` that are no longer running. A migration tells admission when it ends; one that was
     * terminated from outside (the Web UI, tctl) cannot, and this is how its VM and slots are found free again.
     */
    async endedMigrations(input: { migrations: Array<{ id: string; runId: string }> }): Promise<string[]> {
      const client = Context.current().client;
      const ended: string[] = [];
      // By run: a migration id can have several runs (a retry), and only the one admission started is asked about.
      for (const { id, runId } of input.migrations) {
        try {
          const d = await client.workflow.getHandle(id, runId).describe();
          if (d.status.name !== 'RUNNING') ended.push(id);
        } catch (err) {
          if ((err as Error).name === 'WorkflowNotFoundError') ended.push(id);
          else throw err;
        }
      }
      return ended;
    },
  };
}
