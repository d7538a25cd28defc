import { z } from 'zod';
import { MIGRATION_EVENTS } from '../shared/migration-stages';

/**
 * The shapes of the API's answers, for the OpenAPI document (requests are validated by their own schemas in
 * migration-request.ts and migration-listing.ts). Open objects (`looseObject`): answers may gain fields.
 */

const bytes = z.number().int().min(0);
const progress = z.object({ total: bytes, processed: bytes, remaining: bytes });
const vm = z.object({ name: z.string().optional(), moref: z.string().optional() });
const links = z.record(z.string(), z.string());

export const principal = z.object({ user: z.string(), projects: z.union([z.array(z.string()), z.literal('*')]), role: z.enum(['reader', 'member', 'admin']), via: z.string() });

export const admitted = z.looseObject({
  id: z.string(),
  stage: z.literal('Queued'),
  kind: z.enum(['cold', 'warm']),
  sourceVm: z.string().describe('<sourceId>/<VM moref>'),
  queuePosition: z.number().int().min(1).optional(),
  links,
});

export const admittedMany = z.object({
  migrations: z.array(z.union([admitted.extend({ status: z.literal(202), vm }), z.object({ status: z.number().int(), vm, problem: z.looseObject({ type: z.string(), title: z.string(), status: z.number().int(), detail: z.string().optional() }) })])),
});

export const migrationList = z.object({
  migrations: z.array(
    z.looseObject({
      id: z.string(),
      status: z.string(),
      stage: z.string().optional(),
      kind: z.string().optional(),
      project: z.string().optional(),
      sourceVm: z.string().optional(),
      startedAt: z.string(),
      closedAt: z.string().optional(),
    }),
  ),
  nextPageToken: z.string().optional(),
});

const disk = z.looseObject({
  key: z.number().int(),
  label: z.string(),
  capacityBytes: bytes,
  state: z.enum(['pending', 'copying', 'retrying', 'copied', 'failed', 'cancelled', 'syncing', 'synced']),
  progress,
  rateBytesPerSecond: z.number().optional(),
  etaSeconds: z.number().optional(),
  volume: z.string().optional(),
  attempt: z.number().int().optional(),
  lastError: z.string().optional(),
});

export const migrationStatus = z.looseObject({
  id: z.string(),
  kind: z.string(),
  status: z.string(),
  stage: z.string(),
  startedAt: z.string(),
  closedAt: z.string().optional(),
  sourceId: z.string(),
  vm,
  disks: z.array(disk),
  progress,
  submittedBy: z.string().optional(),
  audit: z.array(z.looseObject({ action: z.string(), actor: z.string().optional(), at: z.string() })),
  queue: z.object({ position: z.number().int().min(1), waiting: z.number().int(), waitingFor: z.array(z.string()) }).optional(),
  workerHost: z.string().optional(),
  warnings: z.array(z.string()),
  error: z.string().optional(),
});

export const migrationEvents = z.object({
  id: z.string(),
  events: z.array(z.looseObject({ name: z.enum(MIGRATION_EVENTS), stage: z.string(), time: z.string(), disk: z.number().int().optional(), live: z.boolean().optional(), data: z.record(z.string(), z.unknown()).optional() })),
});

export const cutoverAccepted = z.looseObject({ id: z.string(), accepted: z.literal(true), actor: z.string(), requestedAt: z.string(), at: z.string().optional() });

export const admissionView = z.object({
  live: z.number().int(),
  queue: z.array(z.object({ migrationId: z.string(), project: z.string(), position: z.number().int(), waiting: z.number().int(), waitingFor: z.array(z.string()) })),
  running: z.array(z.object({ migrationId: z.string(), copySlots: z.number().int(), project: z.string(), sourceVm: z.string() })),
});

export const retried = z.looseObject({
  id: z.string(),
  stage: z.literal('Queued'),
  kind: z.enum(['cold', 'warm']),
  retry: z.object({ previousRunId: z.string(), reusedDisks: z.number().int(), resumedDisks: z.number().int() }),
  links,
});
