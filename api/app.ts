import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { canSeeProject, type IdentityProvider, type Principal } from '../identity/identity-provider';
import type { CutoverRequest } from '../shared/migration-input';
import type { TargetCatalog } from '../targets/target-catalog';
import type { AdmissionLimits } from '../workflows/admission-ledger';
import { admissionQueueQuery, admissionWorkflowId, startReplicationUpdate, type AdmissionView } from '../workflows/admission-messages';
import { auditSignal } from '../workflows/migration-audit';
import { cutoverUpdate, warmMigrationStateQuery, type WarmMigrationState } from '../workflows/warm-migration-state';
import { describeMigration, readMigration } from './migration-access';
import { streamEvents } from './migration-events-stream';
import { listMigrations, listQuery } from './migration-listing';
import { createMigrationRequest, cutoverRequest } from './migration-request';
import { retryMigration, submitMigrations } from './migration-submission';
import { sourceRoutes, type ApiSource } from './source-routes';
import { agentTemplateRoutes } from './agent-template-routes';
import { hostOperationRoutes } from './host-operation-routes';
import { targetRoutes } from './target-routes';
import type { VmigrateConfig } from '../config/vmigrate-config';
import { MeasuredThroughput } from './measured-throughput';
import { serviceMetrics } from '../metrics/service-metrics';
import { preflightRoute, runPreflight } from './preflight-route';
import { migrationEvents, migrationStatus } from './migration-view';
import { problemAnsweringListen } from './http-server';
import { panelRouter } from './panel-static';
import { HttpProblem, problemOfLowerLayer, sendProblem } from './problem';
import * as schemas from './response-schemas';
import { mountRoutes, openApiDocument, route } from './route-table';
import type { WorkflowRecord } from './workflow-history';

/** How long GET waits for a running migration's `state` query before answering without it (no worker up). */
const STATE_QUERY_TIMEOUT_MS = 3000;

export interface ApiDeps {
  client: Client;
  namespace?: string;
  taskQueue: string;
  /** Configured sources: their ids, the projects allowed to use each (absent: all), their URLs. The API never sees credentials. */
  sources: Record<string, ApiSource>;
  /** The configured targets, to reject an unknown target (or a flavor a static catalog lacks) before anything starts. */
  targets: TargetCatalog;
  identity: IdentityProvider;
  admission?: AdmissionLimits;
  /** Agent-based migration, when configured: templates and their ISOs. */
  agents?: VmigrateConfig['agents'];
  logger: Logger;
  /** SSE poll interval (tests shorten it). */
  eventPollMs?: number;
  /** Event streams one user may hold open at once (default 8): each one reads its migration's history every poll. */
  eventStreamsPerUser?: number;
  /** How long one event stream stays open before the server ends it (the client resumes with Last-Event-ID). */
  eventStreamMaxSeconds?: number;
  /** The Migration Panel's built files (default: panel/dist of this checkout). */
  panelDir?: string;
}

const migrationId = z.object({ id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/, 'must be a migration id like mig-1234abcd-5678') }).strict();
const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 printable ASCII characters');
const noQuery = z.object({}).strict();

/** The thin HTTP front: identity and scoping, validation, admission, and migrations read back from Temporal. */
export function createApp(deps: ApiDeps): express.Express {
  const namespace = deps.namespace ?? 'default';
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    const started = Date.now();
    res.on('finish', () => {
      const user = (res.locals.principal as Principal | undefined)?.user;
      // The migration a request is about is on its log line, so one migration's lines can be found together.
      const migrationId = /^\/migrations\/([A-Za-z0-9][A-Za-z0-9._:-]{0,199})(?:\/|$)/.exec(req.path)?.[1];
      deps.logger.info({ method: req.method, path: req.path.slice(0, 300), status: res.statusCode, ms: Date.now() - started, user, ...(migrationId ? { migrationId } : {}) }, 'request');
    });
    next();
  });
  // Node's own check would answer this with a bare 400; the server app.listen makes leaves it to here (see below).
  app.use((req, _res, next) => next(req.httpVersion === '1.1' && req.headers.host === undefined ? new HttpProblem('invalid-request', 'an HTTP/1.1 request needs a Host header') : undefined));
  app.use(express.json({ limit: '1mb' }));
  // A body that is not JSON is refused rather than read as an empty request.
  app.use((req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && req.method !== 'GET' && req.method !== 'HEAD' && !req.is('application/json')) {
      next(new HttpProblem('unsupported-media-type', `send the body as application/json (got ${JSON.stringify(String(req.headers['content-type'] ?? 'no Content-Type').slice(0, 100))})`));
      return;
    }
    next();
  });

  const openStreams = new Map<string, number>();
  const preflightDeps = { client: deps.client, taskQueue: deps.taskQueue, sources: deps.sources, targets: deps.targets, throughput: new MeasuredThroughput(deps.client, deps.taskQueue) };

  async function liveState(rec: WorkflowRecord): Promise<WarmMigrationState | undefined> {
    if (rec.status !== 'RUNNING' || rec.workflowType !== 'warmMigration') return undefined;
    return withTimeout(deps.client.workflow.getHandle(rec.workflowId).query(warmMigrationStateQuery));
  }
  async function queuePlace(rec: WorkflowRecord): Promise<AdmissionView['queue'][number] | undefined> {
    if (rec.status !== 'RUNNING' || rec.searchAttributes.MigrationState !== 'Queued' || !(rec.input as { admission?: unknown })?.admission) return undefined;
    const view = await withTimeout(deps.client.workflow.getHandle(admissionWorkflowId(deps.taskQueue)).query(admissionQueueQuery));
    return view?.queue.find((q) => q.migrationId === rec.workflowId);
  }
  async function withTimeout<T>(p: Promise<T>): Promise<T | undefined> {
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STATE_QUERY_TIMEOUT_MS).unref());
    return Promise.race([p.catch(() => undefined), timeout]);
  }

  const routes = [
    route({
      method: 'get',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This API, as OpenAPI 3.1.',
      role: 'public',
      query: noQuery,
      responses: { 200: { description: 'The OpenAPI document' } },
      handler: ({ res }) => void res.json(openapi),
    }),
    route({
      method: 'get',
      path: '/health',
      operationId: 'getHealth',
      summary: 'Liveness of the API process.',
      role: 'public',
      query: noQuery,
      responses: { 200: { description: 'The API answers', schema: z.object({ ok: z.literal(true) }) } },
      handler: ({ res }) => void res.json({ ok: true }),
    }),
    route({
      method: 'get',
      path: '/whoami',
      operationId: 'whoAmI',
      summary: 'Who the token belongs to: user, projects and role.',
      role: 'reader',
      query: noQuery,
      responses: { 200: { description: 'The caller', schema: schemas.principal } },
      handler: ({ res, principal }) => void res.json({ user: principal.user, projects: principal.projects, role: principal.role, via: principal.via }),
    }),
    route({
      method: 'get',
      path: '/migrations',
      operationId: 'listMigrations',
      summary: "List migrations of the caller's projects.",
      description: 'Filters: project, state (stage), kind, sourceId, vm, status. Paging: limit and the pageToken of the previous answer.',
      role: 'reader',
      query: listQuery,
      responses: { 200: { description: 'A page of migrations', schema: schemas.migrationList } },
      handler: async ({ res, principal, query }) => void res.json(await listMigrations(deps.client, namespace, deps.taskQueue, principal, query)),
    }),
    route({
      method: 'post',
      path: '/migrations',
      operationId: 'submitMigrations',
      summary: 'Submit a migration (one VM) or several (vms: one migration each).',
      description:
        'Admission enforces one live migration per source VM, project quotas and disk-copy caps; an admitted migration waits in Queued for a slot. With an Idempotency-Key the same request answers the same migrations; the same key with another body is refused (422).',
      role: 'member',
      query: noQuery,
      body: createMigrationRequest,
      headers: [{ name: 'Idempotency-Key', description: 'Makes retrying the submission safe', schema: idempotencyKey }],
      responses: {
        202: { description: 'Admitted (Queued); for several VMs, each one’s outcome', schema: z.union([schemas.admitted, schemas.admittedMany]) },
        404: { description: 'The project, source or VM is not one the caller can see' },
        409: { description: 'The VM is already being migrated, or a quota would be exceeded' },
        422: { description: 'Preflight failed for the VM (the reasons are in `reasons`), unknown target or flavor, or an Idempotency-Key reused with another body' },
      },
      handler: async ({ req, res, principal, body }) => {
        const key = req.header('idempotency-key');
        if (key !== undefined && !idempotencyKey.safeParse(key).success) {
          throw new HttpProblem('invalid-request', 'Idempotency-Key must be 1-255 printable ASCII characters', { errors: [{ field: 'header.Idempotency-Key', reason: 'must be 1-255 printable ASCII characters' }] });
        }
        // Scoping, the target, and every VM's verdict: a VM that fails preflight is refused (422) with its reasons.
        const preflight = await runPreflight(preflightDeps, principal, body);
        const answer = await submitMigrations({ client: deps.client, taskQueue: deps.taskQueue, limits: deps.admission ?? {}, defaultTarget: deps.targets.defaultTarget }, principal, body, key, preflight);
        deps.logger.info({ user: principal.user, sourceId: body.sourceId, project: body.target.project, vms: (body.vms ?? [body.vm]).length, replayed: answer.replayed }, 'migrations submitted');
        if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
        if (answer.location) res.location(answer.location);
        res.status(answer.status).json(answer.body);
      },
    }),
    route({
      method: 'get',
      path: '/migrations/:id',
      operationId: 'getMigration',
      summary: 'A migration: stage, per-disk progress (total, processed, remaining, rate, ETA), place in line while Queued.',
      role: 'reader',
      params: migrationId,
      query: noQuery,
      responses: { 200: { description: 'The migration', schema: schemas.migrationStatus } },
      handler: async ({ res, principal, params }) => {
        const rec = await readMigration(deps.client, principal, params.id);
        const [live, place] = await Promise.all([liveState(rec), queuePlace(rec)]);
        res.json({ ...migrationStatus(rec, live), ...(place ? { queue: { position: place.position, waiting: place.waiting, waitingFor: place.waitingFor } } : {}) });
      },
    }),
    route({
      method: 'get',
      path: '/migrations/:id/events',
      operationId: 'getMigrationEvents',
      summary: "The migration's events in order; live as Server-Sent Events with Accept: text/event-stream (resumes from Last-Event-ID).",
      role: 'reader',
      params: migrationId,
      query: z.object({ lastEventId: z.string().max(40).optional() }).strict(),
      headers: [{ name: 'Last-Event-ID', description: 'SSE: resume after this event', schema: z.string().max(40) }],
      responses: {
        200: { description: 'The events', schema: schemas.migrationEvents, alsoAs: { 'text/event-stream': { description: 'Server-Sent Events: one per migration event, then `end`' } } },
        429: { description: 'Too many event streams open for this user' },
      },
      handler: async ({ req, res, principal, params }) => {
        const read = async () => {
          // A stream outlives requests: it ends when the caller's credential does.
          if (principal.expiresAt !== undefined && Date.now() >= principal.expiresAt) throw new HttpProblem('unauthenticated', 'the token has expired');
          const record = await readMigration(deps.client, principal, params.id);
          return { record, events: migrationEvents(record) };
        };
        if (req.accepts(['application/json', 'text/event-stream']) === 'text/event-stream') {
          const who = `${principal.via}:${principal.userId ?? principal.user}`;
          const limit = deps.eventStreamsPerUser ?? 8;
          const open = openStreams.get(who) ?? 0;
          if (open >= limit) throw new HttpProblem('too-many-requests', `you have ${open} event streams open (at most ${limit}); close one first`, {}, { 'Retry-After': '5' });
          openStreams.set(who, open + 1);
          try {
            await streamEvents(req, res, read, { pollMs: deps.eventPollMs ?? 1000, keepAliveMs: 15_000, maxMs: (deps.eventStreamMaxSeconds ?? 1800) * 1000 });
          } finally {
            const left = (openStreams.get(who) ?? 1) - 1;
            if (left > 0) openStreams.set(who, left);
            else openStreams.delete(who);
          }
          return;
        }
        res.json({ id: params.id, events: (await read()).events });
      },
    }),
    route({
      method: 'post',
      path: '/migrations/:id/cutover',
      operationId: 'cutOver',
      summary: 'Warm migrations: cut over now or at a time (an Update: refused with the reason when it cannot happen).',
      role: 'member',
      params: migrationId,
      query: noQuery,
      body: cutoverRequest,
      responses: { 202: { description: 'Cutover accepted', schema: schemas.cutoverAccepted }, 409: { description: 'Not a warm migration, ended, not Ready, or already requested' } },
      handler: async ({ res, principal, params, body }) => {
        const description = await describeMigration(deps.client, principal, params.id);
        if (description.type !== 'warmMigration') throw new HttpProblem('conflict', `migration ${params.id} is a cold migration; only warm migrations have a cutover`);
        if (description.status.name !== 'RUNNING') throw new HttpProblem('conflict', `migration ${params.id} has already ended (${description.status.name})`);
        const request: CutoverRequest = { actor: principal.user, at: body.at };
        try {
          const accepted = await deps.client.workflow.getHandle(params.id).executeUpdate(cutoverUpdate, { args: [request] });
          deps.logger.info({ migrationId: params.id, actor: request.actor, at: request.at }, 'cutover accepted');
          res.status(202).json({ id: params.id, ...accepted });
        } catch (err) {
          // The workflow's validator refused it (not Ready, already requested): its message is the reason.
          if (err instanceof WorkflowUpdateFailedError) throw new HttpProblem('conflict', err.cause?.message ?? err.message);
          throw err;
        }
      },
    }),
    route({
      method: 'post',
      path: '/migrations/:id/start',
      operationId: 'startMigration',
      summary: 'Start a migration that was created to be started later (startReplication false).',
      role: 'member',
      params: migrationId,
      query: noQuery,
      body: z.object({}).strict().optional(),
      responses: { 202: { description: 'Started: it joins the line for copy slots', schema: z.object({ id: z.string(), started: z.literal(true), actor: z.string() }) }, 409: { description: 'Ended, or not waiting to be started' } },
      handler: async ({ res, principal, params }) => {
        const description = await describeMigration(deps.client, principal, params.id);
        if (description.status.name !== 'RUNNING') throw new HttpProblem('conflict', `migration ${params.id} has already ended (${description.status.name})`);
        try {
          const answer = await deps.client.workflow.getHandle(params.id).executeUpdate(startReplicationUpdate, { args: [{ actor: principal.user }] });
          deps.logger.info({ migrationId: params.id, actor: principal.user }, 'migration started');
          res.status(202).json({ id: params.id, ...answer });
        } catch (err) {
          if (err instanceof WorkflowUpdateFailedError) throw new HttpProblem('conflict', err.cause?.message ?? err.message);
          throw err;
        }
      },
    }),
    route({
      method: 'post',
      path: '/migrations/:id/cancel',
      operationId: 'cancelMigration',
      summary: 'Cancel a running migration: copies stop, the source is given back as it was, the target keeps nothing unless asked.',
      role: 'member',
      params: migrationId,
      query: noQuery,
      body: z.object({}).strict().optional(),
      responses: { 202: { description: 'Cancel requested', schema: z.object({ id: z.string(), cancelRequested: z.literal(true) }) }, 409: { description: 'The migration has already ended' } },
      handler: async ({ res, principal, params }) => {
        const description = await describeMigration(deps.client, principal, params.id);
        if (description.status.name !== 'RUNNING') throw new HttpProblem('conflict', `migration ${params.id} has already ended (${description.status.name}); nothing to cancel`);
        const handle = deps.client.workflow.getHandle(params.id);
        // Who asked goes into the migration's own history first, then the cancel itself.
        await handle.signal(auditSignal, { action: 'cancel', actor: principal.user, at: new Date().toISOString() });
        await handle.cancel();
        deps.logger.info({ migrationId: params.id, actor: principal.user }, 'cancel requested');
        res.status(202).json({ id: params.id, cancelRequested: true });
      },
    }),
    route({
      method: 'post',
      path: '/migrations/:id/retry',
      operationId: 'retryMigration',
      summary: 'Start a migration that failed or was cancelled again, under the same id, from what is already durable.',
      description:
        'Cold, with target.keepOnFailure: verified copies are reused, partial copies resume. Warm, with its volumes kept (a cancel keeps them unless warm.deleteVolumesOnCancel; a failure with target.keepOnFailure): each disk whose last sync completed starts from that sync, so the first sync copies only what changed since. Without kept volumes every disk is copied anew.',
      role: 'member',
      params: migrationId,
      query: noQuery,
      body: z.object({}).strict().optional(),
      responses: {
        202: { description: 'Admitted again (Queued)', schema: schemas.retried },
        409: { description: 'Still running, completed, or the VM is being migrated by another migration' },
      },
      handler: async ({ res, principal, params }) => {
        const description = await describeMigration(deps.client, principal, params.id);
        if (description.status.name === 'RUNNING') throw new HttpProblem('conflict', `migration ${params.id} is still running; only one that has ended can be retried`);
        if (description.status.name === 'COMPLETED') throw new HttpProblem('conflict', `migration ${params.id} has completed; there is nothing to retry`);
        const rec = await readMigration(deps.client, principal, params.id);
        const answer = await retryMigration({ client: deps.client, taskQueue: deps.taskQueue, limits: deps.admission ?? {}, defaultTarget: deps.targets.defaultTarget }, principal, rec);
        deps.logger.info({ migrationId: params.id, actor: principal.user, previousRunId: rec.runId }, 'retry admitted');
        res.location(answer.location!).status(answer.status).json(answer.body);
      },
    }),
    route({
      method: 'get',
      path: '/metrics',
      operationId: 'getMetrics',
      summary: 'Admins: Prometheus metrics — bytes copied, copy throughput, migrations by stage, sync durations, the queue, predicted downtime.',
      description: 'Prometheus text format. The copy counters are those of the copies this process ran; separate worker processes serve theirs on VMIGRATE_METRICS_ADDRESS.',
      role: 'admin',
      query: noQuery,
      responses: { 200: { description: 'Prometheus text exposition format', alsoAs: { 'text/plain': { description: 'Prometheus text format 0.0.4' } } } },
      handler: async ({ res }) => {
        const { contentType, text } = await serviceMetrics(deps.client, deps.taskQueue);
        res.type(contentType).send(text);
      },
    }),
    ...sourceRoutes({ client: deps.client, taskQueue: deps.taskQueue, sources: deps.sources }),
    ...agentTemplateRoutes({ client: deps.client, taskQueue: deps.taskQueue, targets: deps.targets, agents: deps.agents }),
    ...hostOperationRoutes({ client: deps.client, taskQueue: deps.taskQueue, targets: deps.targets }),
    ...targetRoutes({ client: deps.client, taskQueue: deps.taskQueue, targets: deps.targets }),
    preflightRoute(preflightDeps),
    route({
      method: 'get',
      path: '/admission',
      operationId: 'getAdmission',
      summary: 'Admins: the admission ledger — live migrations, the queue with each place in line and what it waits for.',
      role: 'admin',
      query: noQuery,
      responses: { 200: { description: 'The admission view', schema: schemas.admissionView } },
      handler: async ({ res, principal }) => {
        const view = await withTimeout(deps.client.workflow.getHandle(admissionWorkflowId(deps.taskQueue)).query(admissionQueueQuery));
        const visible = (project: string) => canSeeProject(principal, project);
        const all = view ?? { live: 0, queue: [], running: [] };
        // An admin of some projects sees those projects' part of the ledger only.
        if (principal.projects === '*') res.json(all);
        else {
          const running = all.running.filter((r) => visible(r.project));
          const queue = all.queue.filter((q) => visible(q.project));
          res.json({ live: running.length + queue.length, queue, running });
        }
      },
    }),
  ];
  const openapi = openApiDocument(routes, {
    title: 'vmigrate',
    version: '0.2.0',
    description: 'Migrations from vSphere into KVM/OpenStack clouds. Errors are RFC 9457 application/problem+json.',
  });
  mountRoutes(app, routes, deps.identity);
  app.use(panelRouter(deps.panelDir));
  // The document the panel's API types are generated from (tools/panel/build-panel.ts).
  app.locals.openapi = openapi;

  app.use((req: Request, _res: Response, next: NextFunction) => next(new HttpProblem('not-found', `no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const problem = problemOfLowerLayer(err) ?? temporalProblem(err);
    if (problem) {
      sendProblem(res, problem, req.originalUrl.slice(0, 500));
      return;
    }
    deps.logger.error({ err, method: req.method, path: req.path.slice(0, 300) }, 'request failed');
    sendProblem(res, new HttpProblem('internal-error', 'the request failed on the server; its log has the cause'));
  });

  app.listen = problemAnsweringListen(app, deps.logger);
  return app;
}

/** Temporal being unreachable is a 503 the client can retry, not our bug. */
function temporalProblem(err: unknown): HttpProblem | undefined {
  const code = (err as { code?: unknown })?.code;
  const name = (err as { name?: unknown })?.name;
  if (code === 14 || code === 4 || name === 'ServiceError' || name === 'TransportError') {
    return new HttpProblem('service-unavailable', 'Temporal is not reachable right now; retry shortly', {}, { 'Retry-After': '5' });
  }
  return undefined;
}
