import { condition, defineQuery, defineUpdate, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { GuestOptions, TargetSpec } from '../shared/migration-input';
import { MigrationKind } from '../shared/search-attributes';

/**
 * An agent template, as an entity workflow: what a machine booted from one of its ISOs migrates into, and the
 * enrollment keys its ISOs carry. Keys are kept as SHA-256 hashes of 256-bit random secrets, never the secrets; each
 * ISO download gets its own key, so a leaked ISO is revoked alone. Deleting the template ends the workflow, and with
 * it every key.
 */
export interface AgentTemplateSpec {
  templateId: string;
  name: string;
  project: string;
  createdBy: string;
  createdAt: string;
  /** Flavor absent: the smallest that fits the discovered CPUs and memory. Networks: by MAC, or one for every NIC. */
  target: TargetSpec;
  guest?: GuestOptions;
  /** Start copying as soon as a machine enrolls; false: its migration waits for a confirmation. */
  autoStart: boolean;
  /** Megabits per second each machine's agent sends at most (absent: no limit); told to the agent at enrollment. */
  bandwidthLimitMbps?: number;
}

export interface EnrollmentKeyRecord {
  keyId: string;
  /** SHA-256 of the secret, hex. */
  hash: string;
  issuedAt: string;
  issuedBy: string;
  revokedAt?: string;
  revokedBy?: string;
}

export interface AgentTemplateState {
  template: AgentTemplateSpec;
  keys: EnrollmentKeyRecord[];
  deletedBy?: string;
}

/** Enough for years of downloads; a template that needs more is better split. */
export const MAX_ENROLLMENT_KEYS = 1000;

export const agentTemplateQuery = defineQuery<AgentTemplateState>('template');
export const issueEnrollmentKeyUpdate = defineUpdate<EnrollmentKeyRecord, [{ keyId: string; hash: string; actor: string; at: string }]>('issueEnrollmentKey');
export const revokeEnrollmentKeyUpdate = defineUpdate<EnrollmentKeyRecord, [{ keyId: string; actor: string; at: string }]>('revokeEnrollmentKey');
export const deleteAgentTemplateUpdate = defineUpdate<{ deleted: true }, [{ actor: string }]>('deleteTemplate');

export async function agentTemplate(template: AgentTemplateSpec): Promise<{ deletedBy: string }> {
  const state: AgentTemplateState = { template, keys: [] };
  upsertSearchAttributes([{ key: MigrationKind, value: 'agent-template' }]);
  setHandler(agentTemplateQuery, () => state);
  setHandler(
    issueEnrollmentKeyUpdate,
    (req) => {
      const record: EnrollmentKeyRecord = { keyId: req.keyId, hash: req.hash, issuedAt: req.at, issuedBy: req.actor };
      state.keys.push(record);
      return record;
    },
    {
      validator: (req) => {
        if (state.deletedBy) throw new Error(`template ${template.templateId} is deleted`);
        if (!/^[0-9a-f]{64}$/.test(req.hash)) throw new Error('an enrollment key is stored as its SHA-256, in hex');
        if (state.keys.some((k) => k.keyId === req.keyId)) throw new Error(`enrollment key ${req.keyId} exists`);
        if (state.keys.length >= MAX_ENROLLMENT_KEYS) throw new Error(`template ${template.templateId} has ${MAX_ENROLLMENT_KEYS} enrollment keys; make a new template`);
      },
    },
  );
  setHandler(
    revokeEnrollmentKeyUpdate,
    (req) => {
      const key = state.keys.find((k) => k.keyId === req.keyId)!;
      key.revokedAt ??= req.at;
      key.revokedBy ??= req.actor;
      return key;
    },
    {
      validator: (req) => {
        if (!state.keys.some((k) => k.keyId === req.keyId)) throw new Error(`template ${template.templateId} has no enrollment key ${req.keyId}`);
      },
    },
  );
  setHandler(deleteAgentTemplateUpdate, (req) => {
    state.deletedBy ??= req.actor;
    return { deleted: true as const };
  });
  await condition(() => state.deletedBy !== undefined);
  return { deletedBy: state.deletedBy! };
}
