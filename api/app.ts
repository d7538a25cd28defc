import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ColdMigrationInput, CutoverRequest, WarmMigrationInput } from '../shared/migration-input';
import { MigrationKind, MigrationState, ProjectId, SourceVm } from '../shared/search-attributes';
import { checkTargetRequest, type TargetCatalog } from '../targets/target-catalog';
import { createMigrationRequest, cutoverRequest, fieldErrors } from './migration-request';
import { migrationEvents, migrationStatus } from './migration-view';
import { readWorkflowRecord, type WorkflowRecord } from './workflow-history';

/** Workflow types the API shows as migrations. */
const MIGRATION_WORKFLOW_TYPES = ['coldMigration', 'warmMigration'];
/** How long GET waits for a running migration's `state` query before answering without it (no worker up). */
const STATE_QUERY_TIMEOUT_MS = 3000;

export interface ApiDeps {
  client: Client;
  taskQueue: string;
  /** Configured source ids (the API never sees credentials). */
  sourceIds: string[];
  /** The configured targets, to reject an unknown target (or a flavor a static catalog lacks) before anything starts. */
  targets: TargetCatalog;
  logger: Logger;
}

/** The thin HTTP front: validates, starts workflows, and reads migrations back from Temporal. */
export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.use(express.json({ limit: '1mb' }));

  /** A running migration of the same source VM, found through the SourceVm search attribute. */
  async function runningMigrationOf(sourceVm: string): Promise<string | undefined> {
    // List-filter string literals have no escape syntax we can rely on; names with quotes skip this check.
    if (/['"\\]/.test(sourceVm)) return undefined;
    for await (const wf of deps.client.workflow.list({ query: `SourceVm = '${sourceVm}' AND ExecutionStatus = 'Running' AND TaskQueue = '${deps.taskQueue}'` })) {
      return wf.workflowId;
    }
    return undefined;
  }

  app.post('/migrations', async (req, res) => {
    const parsed = createMigrationRequest.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: 'invalid request', issues: fieldErrors(parsed.error) });
      return;
    }
    const body = parsed.data;
    if (!deps.sourceIds.includes(body.sourceId)) {
      res.status(422).json({
        error: 'unprocessable request',
        issues: [{ field: 'sourceId', reason: `unknown source '${body.sourceId}'; configured: ${deps.sourceIds.join(', ') || '(none)'}` }],
      });
      return;
    }
    const targetIssues = checkTargetRequest(deps.targets, body.target);
    if (targetIssues.length) {
      res.status(422).json({ error: 'unprocessable request', issues: targetIssues });
      return;
    }
    const sourceVm = `${body.sourceId}/${body.vm.moref ?? body.vm.name!}`;
    const running = await runningMigrationOf(sourceVm);
    if (running) {
      res.status(409).json({ error: `VM ${sourceVm} is already being migrated by ${running}; cancel it or wait for it to end` });
      return;
    }
    const migrationId = `mig-${randomUUID().slice(0, 13)}`;
    const target = { ...body.target, name: body.target.name ?? deps.targets.defaultTarget };
    const input: ColdMigrationInput = { migrationId, sourceId: body.sourceId, vm: body.vm, target, ...(body.guest ? { guest: body.guest } : {}) };
    const warm = body.kind === 'warm';
    try {
      await deps.client.workflow.start(warm ? 'warmMigration' : 'coldMigration', {
        workflowId: migrationId,
        taskQueue: deps.taskQueue,
        args: warm ? [{ ...input, warm: body.warm ?? {} } satisfies WarmMigrationInput] : [input],
        typedSearchAttributes: [
          { key: MigrationState, value: 'Queued' },
          { key: MigrationKind, value: body.kind },
          { key: ProjectId, value: body.target.project },
          { key: SourceVm, value: sourceVm },
        ],
        staticSummary: `${warm ? 'Warm' : 'Cold'} migration of ${body.vm.name ?? body.vm.moref} from ${body.sourceId} into ${body.target.project}`,
        staticDetails: warm ? 'Cut over with the `cutover` signal (input `{"actor": "your name"}`) once the migration is **Ready**.' : undefined,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        res.status(409).json({ error: `migration ${migrationId} already exists` });
        return;
      }
      throw err;
    }
    deps.logger.info({ migrationId, sourceId: body.sourceId, vm: body.vm, project: body.target.project }, 'migration submitted');
    res.status(202).location(`/migrations/${migrationId}`).json({
      id: migrationId,
      stage: 'Queued',
      kind: body.kind,
      links: {
        self: `/migrations/${migrationId}`,
        events: `/migrations/${migrationId}/events`,
        ...(warm ? { cutover: `/migrations/${migrationId}/cutover` } : {}),
      },
    });
  });

  app.get('/migrations', async (req, res) => {
    const project = typeof req.query.project === 'string' ? req.query.project : undefined;
    if (project !== undefined && !/^[A-Za-z0-9._-]+$/.test(project)) {
      res.status(400).json({ error: 'invalid request', issues: [{ field: 'project', reason: 'must be a project name' }] });
      return;
    }
    const query = `TaskQueue = '${deps.taskQueue}'` + (project ? ` AND ProjectId = '${project}'` : '');
    const items = [];
    for await (const wf of deps.client.workflow.list({ query })) {
      items.push({
        id: wf.workflowId,
        status: wf.status.name,
        stage: wf.typedSearchAttributes.get(MigrationState),
        project: wf.typedSearchAttributes.get(ProjectId),
        sourceVm: wf.typedSearchAttributes.get(SourceVm),
        startedAt: wf.startTime.toISOString(),
      });
      if (items.length >= 1000) break;
    }
    res.json({ migrations: items });
  });

  /** The migration's record, or a 404 for ids that are not migrations (other workflows may share the namespace). */
  async function readMigration(id: string, res: Response): Promise<WorkflowRecord | undefined> {
    const rec = await readWorkflowRecord(deps.client, id);
    if (!MIGRATION_WORKFLOW_TYPES.includes(rec.workflowType)) {
      res.status(404).json({ error: `no migration with id '${id}'` });
      return undefined;
    }
    return rec;
  }

  /** A running migration's own view (sync statistics, forecast, cutover); undefined when no worker answers in time. */
  async function liveState(rec: WorkflowRecord): Promise<unknown> {
    if (rec.status !== 'RUNNING' || rec.workflowType !== 'warmMigration') return undefined;
    const query = deps.client.workflow.getHandle(rec.workflowId).query('state');
    const timeout = new Promise<undefined>((resolve) => {
      setTimeout(() => resolve(undefined), STATE_QUERY_TIMEOUT_MS).unref();
    });
    return Promise.race([query.catch(() => undefined), timeout]);
  }

  app.get('/migrations/:id', async (req, res) => {
    const rec = await readMigration(req.params.id, res);
    if (rec) res.json(migrationStatus(rec, (await liveState(rec)) as never));
  });

  app.get('/migrations/:id/events', async (req, res) => {
    const rec = await readMigration(req.params.id, res);
    if (rec) res.json({ id: req.params.id, events: migrationEvents(rec) });
  });

  /** Warm migrations: ask for the cutover (an Update, so a cutover that cannot happen now is refused with the reason). */
  app.post('/migrations/:id/cutover', async (req, res) => {
    const parsed = cutoverRequest.safeParse(req.body ?? {});
    if (!parsed.success) {
      res.status(400).json({ error: 'invalid request', issues: fieldErrors(parsed.error) });
      return;
    }
    const handle = deps.client.workflow.getHandle(req.params.id);
    const description = await handle.describe();
    if (!MIGRATION_WORKFLOW_TYPES.includes(description.type)) {
      res.status(404).json({ error: `no migration with id '${req.params.id}'` });
      return;
    }
    if (description.type !== 'warmMigration') {
      res.status(409).json({ error: `migration ${req.params.id} is a cold migration; only warm migrations have a cutover` });
      return;
    }
    if (description.status.name !== 'RUNNING') {
      res.status(409).json({ error: `migration ${req.params.id} has already ended (${description.status.name})` });
      return;
    }
    const request: CutoverRequest = { actor: parsed.data.actor ?? 'api', at: parsed.data.at };
    try {
      const accepted = await handle.executeUpdate('cutover', { args: [request] });
      deps.logger.info({ migrationId: req.params.id, actor: request.actor, at: request.at }, 'cutover accepted');
      res.status(202).json({ id: req.params.id, ...(accepted as object) });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        // The workflow's validator refused it (not Ready, already requested): its message is the reason.
        res.status(409).json({ error: 'cutover refused', reason: err.cause?.message ?? err.message });
        return;
      }
      throw err;
    }
  });

  app.post('/migrations/:id/cancel', async (req, res) => {
    const handle = deps.client.workflow.getHandle(req.params.id);
    const description = await handle.describe();
    if (!MIGRATION_WORKFLOW_TYPES.includes(description.type)) {
      res.status(404).json({ error: `no migration with id '${req.params.id}'` });
      return;
    }
    if (description.status.name !== 'RUNNING') {
      res.status(409).json({ error: `migration ${req.params.id} has already ended (${description.status.name}); nothing to cancel` });
      return;
    }
    await handle.cancel();
    res.status(202).json({ id: req.params.id, cancelRequested: true });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof WorkflowNotFoundError) {
      res.status(404).json({ error: `no migration with id '${err.workflowId}'` });
      return;
    }
    if (err instanceof SyntaxError && 'body' in err) {
      res.status(400).json({ error: 'invalid request', issues: [{ field: '(body)', reason: `not valid JSON: ${err.message}` }] });
      return;
    }
    deps.logger.error({ err }, 'request failed');
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}
