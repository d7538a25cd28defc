import type { InstanceRef, VolumeRef } from '../targets/target-provider';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';

/** Target-side steps around a finished migration: launching the instance, or removing volumes on a cancel. */
export function createInstanceActivities(deps: ActivityDeps) {
  return {
    /**
     * After Finalize, when the migration asks for it: power the target instance on. Runs scheduled before instances
     * were passed whole give only its project and name.
     */
    async startInstance(input: { instance?: InstanceRef; project?: string; name?: string }): Promise<InstanceRef> {
      return failuresTranslated(async () => {
        const ref = input.instance ?? { project: input.project!, name: input.name!, id: '', status: 'SHUTOFF' as const };
        return deps.targets.get(ref.target).startInstance(ref);
      });
    },

    /** A cancelled migration whose options say so: its target volumes go (a volume already gone is fine). */
    async deleteTargetVolumes(input: { volumes: VolumeRef[] }): Promise<{ deleted: string[] }> {
      return failuresTranslated(async () => {
        const deleted: string[] = [];
        for (const ref of input.volumes) {
          await deps.targets.get(ref.target).deleteVolume(ref);
          deleted.push(ref.name);
        }
        return { deleted };
      });
    },
  };
}
