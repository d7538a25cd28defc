import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { canSeeProject, type Principal } from '../identity/identity-provider';
import { MIGRATION_WORKFLOW_TYPES } from '../shared/migration-stages';
import { ProjectId } from '../shared/search-attributes';
import { HttpProblem } from './problem';
import { readWorkflowRecord, type WorkflowRecord } from './workflow-history';

/**
 * Finding a migration for a caller. Anything the caller may not see answers exactly like something that does not
 * exist (404), so ids of other projects' migrations cannot be probed.
 */


const notFound = (id: string) => new HttpProblem('not-found', `no migration with id '${id}'`);

function projectOf(d: WorkflowExecutionDescription): string | undefined {
  const p = d.typedSearchAttributes.get(ProjectId);
  return typeof p === 'string' ? p : undefined;
}

/** The migration's description, or 404 for ids that are not migrations or belong to a project the caller lacks. */
export async function describeMigration(client: Client, principal: Principal, id: string): Promise<WorkflowExecutionDescription> {
  let d: WorkflowExecutionDescription;
  try {
    d = await client.workflow.getHandle(id).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw notFound(id);
    throw err;
  }
  const project = projectOf(d);
  if (!MIGRATION_WORKFLOW_TYPES.includes(d.type) || project === undefined || !canSeeProject(principal, project)) throw notFound(id);
  return d;
}

/** The migration's whole record (history and pending activities), scoped like describeMigration. */
export async function readMigration(client: Client, principal: Principal, id: string): Promise<WorkflowRecord> {
  await describeMigration(client, principal, id);
  try {
    return await readWorkflowRecord(client, id);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw notFound(id);
    throw err;
  }
}
