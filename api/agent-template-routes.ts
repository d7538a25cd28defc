import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { VmigrateConfig } from '../config/vmigrate-config';
import { canSeeProject } from '../identity/identity-provider';
import { ProjectId } from '../shared/search-attributes';
import { agentCertificate } from '../source/agent/agent-trust';
import { buildAgentIso, defaultAgentIsoCacheDir } from '../source/agent/agent-iso';
import { checkTargetRequest, type TargetCatalog } from '../targets/target-catalog';
import { deleteAgentTemplateUpdate, issueEnrollmentKeyUpdate, revokeEnrollmentKeyUpdate } from '../workflows/agent-template';
import { newEnrollmentKey, readTemplate, startTemplate, templateView, templateWorkflowId } from './agent-templates';
import { guestOptions, targetRequest } from './migration-request';
import { HttpProblem } from './problem';
import { route } from './route-table';

export interface AgentTemplateRouteDeps {
  client: Client;
  taskQueue: string;
  targets: TargetCatalog;
  agents?: VmigrateConfig['agents'];
}

const templateParam = z.object({ id: z.string().regex(/^t-[0-9a-f]{12}$/, 'must be a template id like t-0123456789ab') }).strict();
const keyParam = z.object({ id: templateParam.shape.id, keyId: z.string().regex(/^k-[0-9a-f]{8}$/, 'must be an enrollment key id like k-01234567') }).strict();
const noQuery = z.object({}).strict();
/** A deployment has a handful of templates; a list longer than this is cut. */
const MAX_LISTED = 500;

const createTemplate = z
  .object({
    name: z.string().min(1).max(200),
    /** Flavor absent: the smallest that fits what the agent discovers. Networks: by MAC, and one without a MAC for every other NIC. */
    target: targetRequest,
    guest: guestOptions.optional(),
    /** Start copying as soon as a machine enrolls (default false: the migration waits for a confirmation). */
    autoStart: z.boolean().default(false),
    /** Megabits per second a machine's agent sends at most, over all its disks: source networks are often shared. */
    bandwidthLimitMbps: z.number().int().min(1).max(400_000).optional(),
  })
  .strict();

const templateSchema = z.looseObject({ id: z.string(), name: z.string(), project: z.string(), autoStart: z.boolean(), enrollmentKeys: z.array(z.looseObject({ id: z.string(), issuedAt: z.string() })) });

/** Templates of agent-based migration and their boot ISOs. */
export function agentTemplateRoutes(deps: AgentTemplateRouteDeps) {
  const agents = () => {
    // A setting of the deployment, not an outage: retrying would not help.
    if (!deps.agents) throw new HttpProblem('conflict', 'this deployment has no agent endpoint (agents in the configuration): an ISO would have nowhere to enroll');
    return deps.agents;
  };
  return [
    route({
      method: 'post',
      path: '/agent-templates',
      operationId: 'createAgentTemplate',
      summary: 'Create a template for machines booted from the agent ISO: their target, options, and whether they start by themselves.',
      role: 'member',
      query: noQuery,
      body: createTemplate,
      responses: { 201: { description: 'Created', schema: templateSchema }, 404: { description: 'No such project for the caller' }, 422: { description: 'Unknown target or flavor' } },
      handler: async ({ res, principal, body }) => {
        if (!canSeeProject(principal, body.target.project)) throw new HttpProblem('not-found', `no project '${body.target.project}'`);
        const issues = checkTargetRequest(deps.targets, body.target);
        if (issues.length) throw new HttpProblem('unprocessable-request', issues.map((i) => `${i.field}: ${i.reason}`).join('; '));
        const templateId = `t-${randomBytes(6).toString('hex')}`;
        const spec = { templateId, name: body.name, project: body.target.project, createdBy: principal.user, createdAt: new Date().toISOString(), target: body.target, ...(body.guest ? { guest: body.guest } : {}), autoStart: body.autoStart, ...(body.bandwidthLimitMbps ? { bandwidthLimitMbps: body.bandwidthLimitMbps } : {}) };
        await startTemplate(deps.client, deps.taskQueue, spec);
        res.location(`/agent-templates/${templateId}`).status(201).json(templateView({ template: spec, keys: [] }));
      },
    }),
    route({
      method: 'get',
      path: '/agent-templates',
      operationId: 'listAgentTemplates',
      summary: "The agent templates of the caller's projects.",
      role: 'reader',
      query: noQuery,
      responses: { 200: { description: 'Templates, newest first', schema: z.object({ templates: z.array(templateSchema) }) } },
      handler: async ({ res, principal }) => {
        const templates = [];
        // Only fixed words in the query; projects are filtered here, from each template's own search attribute.
        for await (const w of deps.client.workflow.list({ query: "WorkflowType = 'agentTemplate' AND ExecutionStatus = 'Running'" })) {
          const project = w.typedSearchAttributes?.get(ProjectId);
          if (typeof project !== 'string' || !canSeeProject(principal, project)) continue;
          const id = w.workflowId.replace(/^agent-template-/, '');
          try {
            templates.push(templateView(await readTemplate(deps.client, principal, id)));
          } catch (err) {
            if (!(err instanceof HttpProblem)) throw err; // deleted meanwhile
          }
          if (templates.length >= MAX_LISTED) break;
        }
        templates.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
        res.json({ templates });
      },
    }),
    route({
      method: 'get',
      path: '/agent-templates/:id',
      operationId: 'getAgentTemplate',
      summary: 'A template, with its enrollment keys (ids and dates; the keys themselves are only in the ISOs).',
      role: 'reader',
      params: templateParam,
      query: noQuery,
      responses: { 200: { description: 'The template', schema: templateSchema }, 404: { description: 'No such template for the caller' } },
      handler: async ({ res, principal, params }) => {
        res.json(templateView(await readTemplate(deps.client, principal, params.id)));
      },
    }),
    route({
      method: 'get',
      path: '/agent-templates/:id/iso',
      operationId: 'downloadAgentIso',
      summary: 'A bootable ISO (BIOS and UEFI) carrying a new enrollment key of the template, the agent endpoint and its certificate fingerprint.',
      description: 'Every download carries its own enrollment key (X-Enrollment-Key-Id), revocable alone. Boot the machine from it with at least 768 MiB of memory; Secure Boot off.',
      role: 'member',
      params: templateParam,
      query: noQuery,
      responses: { 200: { description: 'The ISO image', alsoAs: { 'application/x-iso9660-image': { description: 'ISO 9660, El Torito BIOS and UEFI' } } }, 404: { description: 'No such template' }, 409: { description: 'The deployment has no agent endpoint configured' } },
      handler: async ({ res, principal, params }) => {
        const state = await readTemplate(deps.client, principal, params.id);
        const cfg = agents();
        const { keyId, key, hash } = newEnrollmentKey(params.id);
        await deps.client.workflow.getHandle(templateWorkflowId(params.id)).executeUpdate(issueEnrollmentKeyUpdate, { args: [{ keyId, hash, actor: principal.user, at: new Date().toISOString() }] });
        const iso = await buildAgentIso({
          cacheDir: cfg.isoCacheDir ?? defaultAgentIsoCacheDir(),
          config: { apiUrl: cfg.enrollment.url, apiFingerprint: agentCertificate(cfg).fingerprint, enrollmentKey: key, templateId: state.template.templateId },
        });
        res.setHeader('Content-Type', 'application/x-iso9660-image');
        res.setHeader('Content-Disposition', `attachment; filename="vmigrate-agent-${params.id}-${keyId}.iso"`);
        res.setHeader('X-Enrollment-Key-Id', keyId);
        const stream = createReadStream(iso);
        const cleanup = () => void rm(path.dirname(iso), { recursive: true, force: true });
        stream.once('close', cleanup);
        stream.pipe(res);
      },
    }),
    route({
      method: 'delete',
      path: '/agent-templates/:id/enrollment-keys/:keyId',
      operationId: 'revokeEnrollmentKey',
      summary: 'Revoke one enrollment key (one ISO download): agents booted from that ISO are refused from now on.',
      role: 'member',
      params: keyParam,
      query: noQuery,
      responses: { 200: { description: 'Revoked' }, 404: { description: 'No such template or key' } },
      handler: async ({ res, principal, params }) => {
        const state = await readTemplate(deps.client, principal, params.id);
        if (!state.keys.some((k) => k.keyId === params.keyId)) throw new HttpProblem('not-found', `template ${params.id} has no enrollment key ${params.keyId}`);
        const record = await deps.client.workflow.getHandle(templateWorkflowId(params.id)).executeUpdate(revokeEnrollmentKeyUpdate, { args: [{ keyId: params.keyId, actor: principal.user, at: new Date().toISOString() }] });
        res.json({ id: record.keyId, revokedAt: record.revokedAt, revokedBy: record.revokedBy });
      },
    }),
    route({
      method: 'delete',
      path: '/agent-templates/:id',
      operationId: 'deleteAgentTemplate',
      summary: 'Delete a template: every ISO made from it is refused from now on; running migrations go on.',
      role: 'member',
      params: templateParam,
      query: noQuery,
      responses: { 204: { description: 'Deleted' }, 404: { description: 'No such template' } },
      handler: async ({ res, principal, params }) => {
        await readTemplate(deps.client, principal, params.id);
        await deps.client.workflow.getHandle(templateWorkflowId(params.id)).executeUpdate(deleteAgentTemplateUpdate, { args: [{ actor: principal.user }] });
        res.status(204).end();
      },
    }),
  ];
}
