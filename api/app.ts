import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ColdMigrationInput } from '../shared/migration-input';
import { MigrationKind, MigrationState, ProjectId, SourceVm } from '../shared/search-attributes';
import type { Flavor } from '../target/target-driver';
import { createMigrationRequest, fieldErrors } from './migration-request';
import { migrationEvents, migrationStatus } from './migration-view';
import { readWorkflowRecord } from './workflow-history';

export interface ApiDeps {
  client: Client;
  taskQueue: string;
  /** Configured source ids (the API never sees credentials). */
  sourceIds: string[];
  /** The target's flavor catalog, to reject an unknown flavor before anything starts. */
  listFlavors: () => Promise<Flavor[]>;
  logger: Logger;
}

/** The thin HTTP front: validates, starts workflows, and reads migrations back from Temporal. */
export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.use(express.json({ limit: '1mb' }));

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
    const flavors = await deps.listFlavors();
    if (!flavors.some((f) => f.name === body.target.flavor)) {
      res.status(422).json({
        error: 'unprocessable request',
        issues: [{ field: 'target.flavor', reason: `unknown flavor '${body.target.flavor}'; available: ${flavors.map((f) => f.name).join(', ')}` }],
      });
      return;
    }
    const migrationId = `mig-${randomUUID().slice(0, 13)}`;
    const input: ColdMigrationInput = { migrationId, sourceId: body.sourceId, vm: body.vm, target: body.target };
    try {
      await deps.client.workflow.start('coldMigration', {
        workflowId: migrationId,
        taskQueue: deps.taskQueue,
        args: [input],
        typedSearchAttributes: [
          { key: MigrationState, value: 'Queued' },
          { key: MigrationKind, value: 'cold' },
          { key: ProjectId, value: body.target.project },
          { key: SourceVm, value: body.vm.moref ?? body.vm.name! },
        ],
        staticSummary: `Cold migration of ${body.vm.name ?? body.vm.moref} from ${body.sourceId} into ${body.target.project}`,
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
      links: { self: `/migrations/${migrationId}`, events: `/migrations/${migrationId}/events` },
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

  app.get('/migrations/:id', async (req, res) => {
    res.json(migrationStatus(await readWorkflowRecord(deps.client, req.params.id)));
  });

  app.get('/migrations/:id/events', async (req, res) => {
    res.json({ id: req.params.id, events: migrationEvents(await readWorkflowRecord(deps.client, req.params.id)) });
  });

  app.post('/migrations/:id/cancel', async (req, res) => {
    await deps.client.workflow.getHandle(req.params.id).cancel();
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
