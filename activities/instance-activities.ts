import type { InstanceRef, VolumeRef } from '../target/target-driver';
import type { ActivityDeps } from './activity-deps';
import { failuresTranslated } from './failures';

/** Target-side steps around a finished migration: launching the instance, or removing volumes on a cancel. */
export function createInstanceActivities(deps: ActivityDeps) {
  return {
    /** After Finalize, when the migration asks for it: power the target instance on. */
    async startInstance(input: { project: string; name: string }): Promise<InstanceRef> {
      return failuresTranslated(() => deps.target.startInstance(input.project, input.name));
    },

    /** A cancelled migration whose options say so: its target volumes go (a volume already gone is fine). */
    async deleteTargetVolumes(input: { volumes: VolumeRef[] }): Promise<{ deleted: string[] }> {
      return failuresTranslated(async () => {
        const deleted: string[] = [];
        for (const ref of input.volumes) {
          if (!(await deps.target.getVolume(ref.project, ref.name))) continue;
          await deps.target.deleteVolume(ref);
          deleted.push(ref.name);
        }
        return { deleted };
      });
    },
  };
}
