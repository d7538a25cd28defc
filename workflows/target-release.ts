import type { ColdMigrationInput } from '../shared/migration-input';
import { controlActivities, rootCauseMessage } from './activity-proxies';

/**
 * Marks runs that release what they made in the target when they fail or are cancelled (ports, a half-built
 * instance, volumes unless `target.keepOnFailure`). Runs started before it keep their volumes, as they did.
 */
export const TARGET_RELEASE_PATCH = 'vmigrate-target-release-v1';

const sharedControl = controlActivities();

/**
 * What a failed or cancelled migration made in the target goes; a cleanup that fails is a warning, not a second failure.
 * `control`: the migration's volume-work proxies when its volumes live on one worker host.
 */
export async function releaseTarget(
  input: Pick<ColdMigrationInput, 'migrationId' | 'target'>,
  warnings: string[],
  keepVolumes = input.target.keepOnFailure ?? false,
  control: ReturnType<typeof controlActivities> = sharedControl,
): Promise<void> {
  try {
    await control.releaseTarget({ target: input.target.name, project: input.target.project, migrationId: input.migrationId, keepVolumes });
  } catch (err) {
    warnings.push(`could not remove what the migration made in the target: ${rootCauseMessage(err)}`);
  }
}
