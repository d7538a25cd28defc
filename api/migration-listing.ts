import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import type { Principal } from '../identity/identity-provider';
import { COLD_STAGES, WARM_STAGES } from '../shared/migration-stages';
import { MigrationKind, MigrationState, ProjectId, SourceVm } from '../shared/search-attributes';
import { HttpProblem } from './problem';
import { MIGRATION_WORKFLOW_TYPES } from '../shared/migration-stages';

/**
 * GET /migrations: a visibility query restricted to the caller's projects, with filters and paging. The query
 * string is built only from values the server owns — the task queue, the workflow types, the caller's project names
 * from its identity (each checked against the project-name pattern), and stage and kind names picked from fixed
 * lists — never from the request's text. Source and VM filters are applied to the results instead.
 */

const STAGES = [...new Set([...COLD_STAGES, ...WARM_STAGES, 'Failed', 'Cancelled'])] as [string, ...string[]];
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const listQuery = z
  .object({
    project: z.string().regex(SAFE_NAME, 'must be a project name').optional(),
    state: z.enum(STAGES).optional(),
    kind: z.enum(['cold', 'warm', 'agent']).optional(),
    sourceId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a source id').optional(),
    /** A VM moref ("vm-42"): migrations record the VM by moref, however it was named at submission. */
    vm: z.string().min(1).max(80).optional(),
    /** running: only migrations that have not ended. */
    status: z.enum(['running', 'closed']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    pageToken: z.string().regex(/^[A-Za-z0-9_-]{1,4096}$/, 'must be a pageToken from a previous answer').optional(),
  })
  .strict();

export type ListQuery = z.infer<typeof listQuery>;

export interface MigrationListItem {
  id: string;
  status: string;
  stage?: string;
  kind?: string;
  project?: string;
  sourceVm?: string;
  startedAt: string;
  closedAt?: string;
}

const quote = (v: string) => {
  // Only values matching SAFE_NAME (or fixed names) get here; checked again so a mistake cannot become an injection.
  if (!/^[A-Za-z0-9._/-]+$/.test(v)) throw new Error(`refusing to put ${JSON.stringify(v)} into a visibility query`);
  return `'${v}'`;
};

export function visibilityQuery(taskQueue: string, principal: Principal, q: ListQuery): string | undefined {
  // A warm migration that continued as new has a closed run per hand-over: only its latest run is the migration.
  const clauses = [`TaskQueue = ${quote(taskQueue)}`, `WorkflowType IN (${MIGRATION_WORKFLOW_TYPES.map(quote).join(', ')})`, `ExecutionStatus != 'ContinuedAsNew'`];
  const mine = principal.projects === '*' ? undefined : principal.projects.filter((p) => SAFE_NAME.test(p));
  let projects = mine;
  if (q.project) {
    if (mine && !mine.includes(q.project)) return undefined; // another project's: nothing, as if it had none
    projects = [q.project];
  }
  if (projects) {
    if (!projects.length) return undefined;
    clauses.push(`${ProjectId.name} IN (${projects.map(quote).join(', ')})`);
  }
  if (q.state) clauses.push(`${MigrationState.name} = ${quote(STAGES.find((s) => s === q.state)!)}`);
  if (q.kind) clauses.push(`${MigrationKind.name} = ${quote(q.kind === 'warm' ? 'warm' : q.kind === 'agent' ? 'agent' : 'cold')}`);
  if (q.status) clauses.push(q.status === 'running' ? `ExecutionStatus = 'Running'` : `ExecutionStatus != 'Running'`);
  return clauses.join(' AND ');
}

function matches(item: MigrationListItem, q: ListQuery): boolean {
  if (!q.sourceId && !q.vm) return true;
  const sv = item.sourceVm ?? '';
  const slash = sv.indexOf('/');
  const source = sv.slice(0, slash);
  const vm = sv.slice(slash + 1);
  return (!q.sourceId || source === q.sourceId) && (!q.vm || vm === q.vm);
}

/**
 * nextPageToken is Temporal's token behind a check value over it and what it pages (the visibility query, which holds
 * the caller's projects, and the source and VM filters). A token that did not come from a previous answer with the
 * same filters is refused here instead of being handed to Temporal: its SQL visibility store fails on a token it
 * cannot read with an internal error (UNKNOWN), which the client retries for seconds before it becomes a 500.
 */
const CHECK_BYTES = 12;
const pageScope = (query: string, q: ListQuery) => JSON.stringify([query, q.sourceId ?? null, q.vm ?? null]);
const checkValue = (scope: string, token: Uint8Array) => createHash('sha256').update(scope).update('\0').update(token).digest().subarray(0, CHECK_BYTES);

export function encodePageToken(scope: string, token: Uint8Array): string {
  return Buffer.concat([checkValue(scope, token), token]).toString('base64url');
}

export function decodePageToken(scope: string, pageToken: string): Uint8Array | undefined {
  const bytes = Buffer.from(pageToken, 'base64url');
  const token = bytes.subarray(CHECK_BYTES);
  return token.length && bytes.subarray(0, CHECK_BYTES).equals(checkValue(scope, token)) ? token : undefined;
}

const badPageToken = () =>
  new HttpProblem('invalid-request', 'pageToken is not valid (it must come from a previous answer with the same filters)', { errors: [{ field: 'query.pageToken', reason: 'not a valid page token' }] });

export async function listMigrations(client: Client, namespace: string, taskQueue: string, principal: Principal, q: ListQuery): Promise<{ migrations: MigrationListItem[]; nextPageToken?: string }> {
  const query = visibilityQuery(taskQueue, principal, q);
  if (!query) return { migrations: [] };
  const items: MigrationListItem[] = [];
  const scope = pageScope(query, q);
  let token: Uint8Array | undefined;
  if (q.pageToken) {
    token = decodePageToken(scope, q.pageToken);
    if (!token) throw badPageToken();
  }
  // Fetch exactly what is still missing each time, so the page token returned never skips a migration.
  for (let round = 0; round < 20; round++) {
    let page: temporal.api.workflowservice.v1.ListWorkflowExecutionsResponse;
    try {
      page = await client.workflowService.listWorkflowExecutions({ namespace, query, pageSize: q.limit - items.length, nextPageToken: token });
    } catch (err) {
      // The only client-supplied part of the call is the token: a server refusing it means the token is bad.
      if (q.pageToken && (err as { code?: number }).code === 3) throw badPageToken();
      throw err;
    }
    for (const e of page.executions ?? []) {
      const attrs = decodeTypedSearchAttributes(e.searchAttributes?.indexedFields);
      const item: MigrationListItem = {
        id: e.execution?.workflowId ?? '',
        status: temporal.api.enums.v1.WorkflowExecutionStatus[e.status ?? 0]?.replace('WORKFLOW_EXECUTION_STATUS_', '') ?? 'UNKNOWN',
        stage: attrs.get(MigrationState),
        kind: attrs.get(MigrationKind),
        project: attrs.get(ProjectId),
        sourceVm: attrs.get(SourceVm),
        startedAt: tsIso(e.startTime)!,
        ...(e.closeTime ? { closedAt: tsIso(e.closeTime) } : {}),
      };
      // A retried migration's earlier runs share its id; the newest run (listed first) is the migration.
      if (matches(item, q) && !items.some((i) => i.id === item.id)) items.push(item);
    }
    token = page.nextPageToken?.length ? page.nextPageToken : undefined;
    if (!token || items.length >= q.limit) break;
  }
  return { migrations: items, ...(token ? { nextPageToken: encodePageToken(scope, token) } : {}) };
}

function tsIso(ts: Parameters<typeof tsToMs>[0]): string | undefined {
  return ts ? new Date(tsToMs(ts)).toISOString() : undefined;
}
