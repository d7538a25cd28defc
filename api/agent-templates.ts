import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { canSeeProject, type Principal } from '../identity/identity-provider';
import { ProjectId } from '../shared/search-attributes';
import { agentTemplate, agentTemplateQuery, type AgentTemplateSpec, type AgentTemplateState, type EnrollmentKeyRecord } from '../workflows/agent-template';
import { HttpProblem } from './problem';

/**
 * Agent templates as the API keeps them: one entity workflow each (workflows/agent-template.ts). Enrollment keys
 * have the form `vmk_<templateId>_<keyId>_<secret>`: the ids say which template and key to check, the secret (32
 * random bytes) is compared by its SHA-256 and never stored.
 */

export const templateWorkflowId = (templateId: string) => `agent-template-${templateId}`;
export const TEMPLATE_ID = /^t-[0-9a-f]{12}$/;
const KEY_FORMAT = /^vmk_(t-[0-9a-f]{12})_(k-[0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;

export const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

export function newEnrollmentKey(templateId: string): { keyId: string; key: string; hash: string } {
  const keyId = `k-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  return { keyId, key: `vmk_${templateId}_${keyId}_${secret}`, hash: sha256Hex(secret) };
}

export async function startTemplate(client: Client, taskQueue: string, spec: AgentTemplateSpec): Promise<void> {
  await client.workflow.start(agentTemplate, {
    workflowId: templateWorkflowId(spec.templateId),
    taskQueue,
    args: [spec],
    typedSearchAttributes: [{ key: ProjectId, value: spec.project }],
  });
}

/** The template's state, or 404 when it does not exist, was deleted, or belongs to a project the caller lacks. */
export async function readTemplate(client: Client, principal: Principal | undefined, templateId: string): Promise<AgentTemplateState> {
  const notFound = new HttpProblem('not-found', `no agent template '${templateId}'`);
  if (!TEMPLATE_ID.test(templateId)) throw notFound;
  let state: AgentTemplateState;
  try {
    const handle = client.workflow.getHandle(templateWorkflowId(templateId));
    const d = await handle.describe();
    if (d.type !== 'agentTemplate' || d.status.name !== 'RUNNING') throw notFound;
    state = await handle.query(agentTemplateQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw notFound;
    throw err;
  }
  if (principal && !canSeeProject(principal, state.template.project)) throw notFound;
  return state;
}

/** What a template looks like to API callers: its keys by id and state, never a hash. */
export function templateView(state: AgentTemplateState) {
  return {
    ...state.template,
    id: state.template.templateId,
    enrollmentKeys: state.keys.map((k) => ({ id: k.keyId, issuedAt: k.issuedAt, issuedBy: k.issuedBy, ...(k.revokedAt ? { revokedAt: k.revokedAt, revokedBy: k.revokedBy } : {}) })),
    links: { self: `/agent-templates/${state.template.templateId}`, iso: `/agent-templates/${state.template.templateId}/iso` },
  };
}

export class EnrollmentRefused extends Error {
  override name = 'EnrollmentRefused';
}

/** The template an enrollment key belongs to, if the key is one of its live keys; otherwise why not (said to the agent). */
export async function checkEnrollmentKey(client: Client, key: string): Promise<{ state: AgentTemplateState; keyRecord: EnrollmentKeyRecord }> {
  const m = KEY_FORMAT.exec(key);
  if (!m) throw new EnrollmentRefused('the enrollment key is not a vmigrate enrollment key (download the ISO again)');
  const [, templateId, keyId, secret] = m;
  let state: AgentTemplateState;
  try {
    state = await readTemplate(client, undefined, templateId);
  } catch (err) {
    if (err instanceof HttpProblem) throw new EnrollmentRefused(`the enrollment key's template ${templateId} does not exist (deleted?)`);
    throw err;
  }
  const record = state.keys.find((k) => k.keyId === keyId);
  const want = Buffer.from(record?.hash ?? '0'.repeat(64), 'hex');
  const got = Buffer.from(sha256Hex(secret), 'hex');
  if (!record || !timingSafeEqual(want, got)) throw new EnrollmentRefused(`the enrollment key ${keyId} is not valid for template ${templateId}`);
  if (record.revokedAt) throw new EnrollmentRefused(`the enrollment key ${keyId} of template ${templateId} was revoked at ${record.revokedAt}`);
  return { state, keyRecord: record };
}

