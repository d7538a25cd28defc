import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { MigrationKind, MigrationState } from '../shared/search-attributes';
import type { LiveMigrationInput } from '../shared/live-migration-input';
import type { TargetCatalog } from '../targets/target-catalog';
import { hostDrain, hostDrainStateQuery, type HostDrainInput } from '../workflows/host-drain';
import { liveMigration } from '../workflows/live-migration';
import { hostDrainView, liveMigrationView } from './host-operation-view';
import { HttpProblem } from './problem';
import { route } from './route-table';
import { readWorkflowRecord } from './workflow-history';

/**
 * Operations on a target's hosts rather than on a project's VMs: live-migrating a running server to another host,
 * and draining a host for maintenance. They act cloud-wide with the target's admin credentials, so they need the
 * admin role; they are not scoped to projects.
 */

export interface HostOperationRouteDeps {
  client: Client;
  taskQueue: string;
  targets: TargetCatalog;
}

const liveId = z.string().regex(/^(lm-[0-9a-f]{12}|hd-[0-9a-f]{12}-[A-Za-z0-9_.-]{1,128})$/, 'must be a live migration id like lm-0123456789ab');
const drainId = z.string().regex(/^hd-[0-9a-f]{12}$/, 'must be a host drain id like hd-0123456789ab');
const noQuery = z.object({}).strict();
const hostName = z.string().min(1).max(255).regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'must be a host name as the target lists it');
const convergence = z
  .object({
    /** Seconds it may run before the policy acts (default 1800). */
    limitSeconds: z.number().int().min(1).max(86_400),
    /** force-complete: Nova's force_complete, or the guest paused for the last copy; abort: it stays where it was. */
    onLimit: z.enum(['force-complete', 'abort']),
  })
  .strict();
const blockMigration = z.union([z.literal('auto'), z.boolean()]).default('auto');

const createLive = z
  .object({
    target: z.string().min(1).max(63),
    /** The server's id (OpenStack) or the domain's name or UUID (libvirt). */
    server: z.string().min(1).max(255).regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'must be a server id or a domain name'),
    /** A host of the target; absent, the scheduler (OpenStack) or the host with the most free memory (libvirt) is chosen. */
    destination: hostName.optional(),
    blockMigration,
    convergence: convergence.optional(),
  })
  .strict();

const createDrain = z
  .object({
    target: z.string().min(1).max(63),
    host: hostName,
    /** Recorded as the compute service's disabled reason. */
    reason: z.string().min(1).max(255),
    maxInFlight: z.number().int().min(1).max(16).default(1),
    reenable: z.boolean().default(false),
    blockMigration,
    convergence: convergence.optional(),
  })
  .strict();

const liveSchema = z.looseObject({ id: z.string(), kind: z.literal('live'), target: z.string(), serverId: z.string(), stage: z.string(), status: z.string() });
const drainSchema = z.looseObject({ id: z.string(), kind: z.literal('drain'), target: z.string(), host: z.string(), stage: z.string(), status: z.string() });

/** Live migration needs hosts: an OpenStack cloud (through Nova) or a libvirt target; drain goes through Nova. */
function hostTarget(deps: HostOperationRouteDeps, name: string, what: 'live migration' | 'host drain'): void {
  const entry = deps.targets.entries.find((e) => e.name === name);
  if (!entry) throw new HttpProblem('unprocessable-request', `target: no target '${name}'; configured: ${deps.targets.entries.map((e) => e.name).join(', ')}`);
  const ok = what === 'live migration' ? entry.kind === 'openstack' || entry.kind === 'libvirt' : entry.kind === 'openstack';
  if (!ok) throw new HttpProblem('unprocessable-request', `target: ${name} is a ${entry.kind} target; ${what} needs ${what === 'live migration' ? 'an OpenStack or a libvirt target' : 'an OpenStack target'}`);
}

const liveWorkflowId = (id: string) => (id.startsWith('lm-') ? `live-${id}` : id);

async function record(client: Client, workflowId: string, what: string) {
  try {
    return await readWorkflowRecord(client, workflowId);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new HttpProblem('not-found', `no ${what}`);
    throw err;
  }
}

export function hostOperationRoutes(deps: HostOperationRouteDeps) {
  const listed = async (workflowType: string, map: (workflowId: string) => string | undefined, onlyRunning = false) => {
    const items: Array<{ id: string; stage: string; status: string; startedAt?: string }> = [];
    // Fixed words and the deployment's own task queue: nothing from the request is part of the query.
    if (!/^[A-Za-z0-9._-]+$/.test(deps.taskQueue)) throw new Error(`refusing to put task queue ${JSON.stringify(deps.taskQueue)} into a visibility query`);
    const query = `WorkflowType = '${workflowType}' AND TaskQueue = '${deps.taskQueue}'${onlyRunning ? ` AND ExecutionStatus = 'Running'` : ''}`;
    for await (const w of deps.client.workflow.list({ query })) {
      const id = map(w.workflowId);
      if (id) items.push({ id, stage: String(w.typedSearchAttributes?.get(MigrationState) ?? 'Queued'), status: w.status.name, startedAt: w.startTime.toISOString() });
      if (items.length >= 200) break;
    }
    return items;
  };
  return [
    route({
      method: 'post',
      path: '/live-migrations',
      operationId: 'createLiveMigration',
      summary: 'Live-migrate a running server to another host of its target (admin).',
      description: 'Checks first (both hosts up and enabled, capacity, hypervisor versions, CPU); live or block migration follows from the server’s storage unless blockMigration says. Cancel aborts it: the server stays running on its source.',
      role: 'admin',
      query: noQuery,
      body: createLive,
      responses: { 202: { description: 'Started', schema: liveSchema }, 422: { description: 'Unknown target, or one without hosts to move between' } },
      handler: async ({ res, principal, body }) => {
        hostTarget(deps, body.target, 'live migration');
        const id = `lm-${randomBytes(6).toString('hex')}`;
        const input: LiveMigrationInput = {
          operationId: id,
          target: { name: body.target },
          serverId: body.server,
          ...(body.destination ? { destination: body.destination } : {}),
          blockMigration: body.blockMigration,
          ...(body.convergence ? { convergence: body.convergence } : {}),
          requestedBy: principal.user,
        };
        await deps.client.workflow.start(liveMigration, {
          taskQueue: deps.taskQueue,
          workflowId: liveWorkflowId(id),
          args: [input],
          typedSearchAttributes: [
            { key: MigrationState, value: 'Queued' },
            { key: MigrationKind, value: 'live' },
          ],
        });
        res.location(`/live-migrations/${id}`).status(202).json(liveMigrationView(id, await record(deps.client, liveWorkflowId(id), `live migration ${id}`)));
      },
    }),
    route({
      method: 'get',
      path: '/live-migrations',
      operationId: 'listLiveMigrations',
      summary: 'Live migrations, newest first, with their stage (admin).',
      role: 'admin',
      query: noQuery,
      responses: { 200: { description: 'Live migrations', schema: z.object({ liveMigrations: z.array(z.looseObject({ id: z.string(), stage: z.string(), status: z.string() })) }) } },
      handler: async ({ res }) => {
        const items = await listed('liveMigration', (wid) => (wid.startsWith('live-lm-') ? wid.slice('live-'.length) : /^hd-[0-9a-f]{12}-/.test(wid) ? wid : undefined));
        res.json({ liveMigrations: items });
      },
    }),
    route({
      method: 'get',
      path: '/live-migrations/:id',
      operationId: 'getLiveMigration',
      summary: 'A live migration: its stage, checks, progress (memory and disk processed and remaining, dirty rate, expected downtime), and outcome (admin).',
      role: 'admin',
      params: z.object({ id: liveId }).strict(),
      query: noQuery,
      responses: { 200: { description: 'The live migration', schema: liveSchema }, 404: { description: 'No such live migration' } },
      handler: async ({ res, params }) => {
        res.json(liveMigrationView(params.id, await record(deps.client, liveWorkflowId(params.id), `live migration ${params.id}`)));
      },
    }),
    route({
      method: 'post',
      path: '/live-migrations/:id/cancel',
      operationId: 'cancelLiveMigration',
      summary: 'Cancel a live migration: it is aborted, the server stays running on its source (admin).',
      role: 'admin',
      params: z.object({ id: liveId }).strict(),
      query: noQuery,
      responses: { 202: { description: 'Cancel requested', schema: liveSchema }, 404: { description: 'No such live migration' }, 409: { description: 'It has ended already' } },
      handler: async ({ res, params }) => {
        const wid = liveWorkflowId(params.id);
        const rec = await record(deps.client, wid, `live migration ${params.id}`);
        if (rec.status !== 'RUNNING') throw new HttpProblem('conflict', `live migration ${params.id} has ended (${rec.status.toLowerCase()}): there is nothing to cancel`);
        await deps.client.workflow.getHandle(wid).cancel();
        res.status(202).json(liveMigrationView(params.id, rec));
      },
    }),
    route({
      method: 'post',
      path: '/host-drains',
      operationId: 'createHostDrain',
      summary: 'Drain a compute host for maintenance: disable it with a reason, live-migrate every server off it, at most maxInFlight at once (admin).',
      role: 'admin',
      query: noQuery,
      body: createDrain,
      responses: { 202: { description: 'Started', schema: drainSchema }, 409: { description: 'The host is being drained already' }, 422: { description: 'Unknown target, or not an OpenStack target' } },
      handler: async ({ res, principal, body }) => {
        hostTarget(deps, body.target, 'host drain');
        // Only running drains: a host has at most one at a time, however many ended before.
        for (const running of await listed('hostDrain', (wid) => (wid.startsWith('drain-hd-') ? wid.slice('drain-'.length) : undefined), true)) {
          const input = (await record(deps.client, `drain-${running.id}`, 'host drain')).input as HostDrainInput;
          if (input.target.name === body.target && input.host === body.host) throw new HttpProblem('conflict', `host ${body.host} of target ${body.target} is being drained already (${running.id})`);
        }
        const id = `hd-${randomBytes(6).toString('hex')}`;
        const input: HostDrainInput = {
          operationId: id,
          target: { name: body.target },
          host: body.host,
          reason: body.reason,
          maxInFlight: body.maxInFlight,
          reenable: body.reenable,
          blockMigration: body.blockMigration,
          ...(body.convergence ? { convergence: body.convergence } : {}),
          requestedBy: principal.user,
        };
        await deps.client.workflow.start(hostDrain, {
          taskQueue: deps.taskQueue,
          workflowId: `drain-${id}`,
          args: [input],
          typedSearchAttributes: [
            { key: MigrationState, value: 'Queued' },
            { key: MigrationKind, value: 'drain' },
          ],
        });
        res.location(`/host-drains/${id}`).status(202).json(hostDrainView(id, await record(deps.client, `drain-${id}`, `host drain ${id}`)));
      },
    }),
    route({
      method: 'get',
      path: '/host-drains',
      operationId: 'listHostDrains',
      summary: 'Host drains, newest first, with their stage (admin).',
      role: 'admin',
      query: noQuery,
      responses: { 200: { description: 'Host drains', schema: z.object({ hostDrains: z.array(z.looseObject({ id: z.string(), stage: z.string(), status: z.string() })) }) } },
      handler: async ({ res }) => {
        res.json({ hostDrains: (await listed('hostDrain', (wid) => (wid.startsWith('drain-hd-') ? wid.slice('drain-'.length) : undefined))) });
      },
    }),
    route({
      method: 'get',
      path: '/host-drains/:id',
      operationId: 'getHostDrain',
      summary: 'A host drain: its stage and each server’s live migration, where it went or why it did not (admin).',
      role: 'admin',
      params: z.object({ id: drainId }).strict(),
      query: noQuery,
      responses: { 200: { description: 'The host drain', schema: drainSchema }, 404: { description: 'No such host drain' } },
      handler: async ({ res, params }) => {
        const rec = await record(deps.client, `drain-${params.id}`, `host drain ${params.id}`);
        const view = hostDrainView(params.id, rec);
        if (rec.status === 'RUNNING' && !view.servers) {
          // While it runs, its servers are in its state (a query: answered when a worker is up, else left out).
          const state = await deps.client.workflow
            .getHandle(`drain-${params.id}`)
            .query(hostDrainStateQuery)
            .catch(() => undefined);
          if (state) Object.assign(view, { servers: state.servers, moved: state.moved, notMoved: state.notMoved });
        }
        res.json(view);
      },
    }),
    route({
      method: 'post',
      path: '/host-drains/:id/cancel',
      operationId: 'cancelHostDrain',
      summary: 'Cancel a host drain: its running live migrations are aborted; the host stays disabled (admin).',
      role: 'admin',
      params: z.object({ id: drainId }).strict(),
      query: noQuery,
      responses: { 202: { description: 'Cancel requested', schema: drainSchema }, 404: { description: 'No such host drain' }, 409: { description: 'It has ended already' } },
      handler: async ({ res, params }) => {
        const rec = await record(deps.client, `drain-${params.id}`, `host drain ${params.id}`);
        if (rec.status !== 'RUNNING') throw new HttpProblem('conflict', `host drain ${params.id} has ended (${rec.status.toLowerCase()}): there is nothing to cancel`);
        await deps.client.workflow.getHandle(`drain-${params.id}`).cancel();
        res.status(202).json(hostDrainView(params.id, rec));
      },
    }),
  ];
}
