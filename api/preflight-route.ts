import { z } from 'zod';
import { canSeeProject, type Principal } from '../identity/identity-provider';
import type { PreflightAnswer, PreflightRequest } from '../preflight/assess-migrations';
import { estimateRuntime, type RuntimeEstimate, type ThroughputSample } from '../preflight/runtime-estimate';
import { describeFailures, type VmVerdict } from '../preflight/verdict';
import { checkTargetRequest, type TargetCatalog } from '../targets/target-catalog';
import { preflightAssessment } from '../workflows/source-reads';
import type { MeasuredThroughput } from './measured-throughput';
import { createMigrationRequest, type CreateMigrationRequest } from './migration-request';
import { HttpProblem } from './problem';
import { route } from './route-table';
import { sourceFor, type ApiSource } from './source-routes';
import { runWorkerRead, type WorkerRead } from './worker-reads';

export interface PreflightDeps extends WorkerRead {
  sources: Record<string, ApiSource>;
  targets: TargetCatalog;
  throughput: MeasuredThroughput;
}

export type EstimatedAnswer = PreflightAnswer & {
  verdicts: Array<PreflightAnswer['verdicts'][number] & { estimate: RuntimeEstimate }>;
  /** All VMs of the request, one after another. */
  estimate: RuntimeEstimate;
};

/**
 * The checks POST /preflight and POST /migrations share: the caller may use the project and the source, the target
 * is configured, then a worker judges every VM; each verdict gets the runtime estimate.
 */
export async function runPreflight(deps: PreflightDeps, principal: Principal, body: CreateMigrationRequest): Promise<EstimatedAnswer> {
  // Existence must not leak: a project or source the caller cannot use answers as if it did not exist.
  if (!canSeeProject(principal, body.target.project)) throw new HttpProblem('not-found', `no project '${body.target.project}'`);
  const source = sourceFor(deps.sources, principal, body.sourceId);
  if (source.projects && !source.projects.includes(body.target.project)) throw new HttpProblem('not-found', `no source '${body.sourceId}'`);
  const targetIssues = checkTargetRequest(deps.targets, body.target);
  if (targetIssues.length) throw new HttpProblem('unprocessable-request', targetIssues.map((i) => i.reason).join('; '), { errors: targetIssues });
  const request: PreflightRequest = {
    sourceId: body.sourceId,
    kind: body.kind,
    vms: body.vms ?? [body.vm!],
    target: { ...body.target, name: body.target.name ?? deps.targets.defaultTarget },
    ...(body.guest ? { guest: body.guest } : {}),
    ...(body.warm ? { warm: body.warm } : {}),
    ...(body.cold ? { cold: body.cold } : {}),
  };
  const answer = await runWorkerRead(deps, preflightAssessment, [request], { idPrefix: 'preflight', timeoutSeconds: 60, what: `preflight of ${request.vms.length} VM(s) from source '${body.sourceId}'` });
  // One reading of the measured rate serves every VM of the request and their total.
  const samples = await deps.throughput.samples();
  const verdicts = answer.verdicts.map((v) => ({ ...v, estimate: estimateFor(samples, v) }));
  const total = verdicts.reduce((n, v) => n + (v.bytesToCopy ?? 0), 0);
  return { ...answer, verdicts, estimate: estimateRuntime(total, samples) };
}

function estimateFor(samples: readonly ThroughputSample[], v: VmVerdict): RuntimeEstimate {
  if (v.bytesToCopy === undefined) return { basis: 'none', reason: 'the VM was not found, so there is nothing to estimate' };
  return estimateRuntime(v.bytesToCopy, samples);
}

/** A submission of a VM whose verdict is Fail: 422 naming every failing rule. */
export function preflightRefusal(v: VmVerdict): HttpProblem {
  const name = v.vm.name ?? v.vm.moref;
  // A VM that is not there answers like anything else that is not there.
  const missing = v.reasons.find((r) => r.code === 'vm.not_found');
  if (missing) return new HttpProblem('not-found', missing.message);
  return new HttpProblem('unprocessable-request', `preflight refused VM ${name}: ${describeFailures(v)}`, {
    verdict: v.verdict,
    reasons: v.reasons,
    errors: v.reasons.filter((r) => r.severity === 'fail').map((r) => ({ field: 'vm', reason: `${r.code}: ${r.message}` })),
  });
}

const reason = z.object({ code: z.string(), severity: z.enum(['warn', 'fail']), message: z.string() });
const estimate = z.union([
  z.object({ basis: z.literal('measured'), seconds: z.number(), copySeconds: z.number(), otherSeconds: z.number(), bytesPerSecond: z.number(), migrations: z.number().int() }),
  z.object({ basis: z.literal('none'), reason: z.string() }),
]);
export const preflightAnswer = z.object({
  assessedAt: z.string(),
  verdicts: z.array(
    z.looseObject({
      vm: z.object({ name: z.string().optional(), moref: z.string().optional() }),
      verdict: z.enum(['Pass', 'Warn', 'Fail']),
      reasons: z.array(reason),
      flavor: z.string().optional(),
      bytesToCopy: z.number().int().optional(),
      disks: z.number().int().optional(),
      estimate,
    }),
  ),
  estimate: estimate.describe('all VMs of the request, one after another'),
});

export function preflightRoute(deps: PreflightDeps) {
  return route({
    method: 'post',
    path: '/preflight',
    operationId: 'preflight',
    summary: 'Pass, Warn or Fail for each VM of a would-be migration, with every reason and the estimated runtime; nothing is started or changed.',
    description:
      'The body is a POST /migrations body. Each reason has a stable code and says what to do. A migration is accepted only with Pass or Warn. The estimate comes from the copy rate this deployment measured on its recent cold migrations (basis "none" until one has completed).',
    role: 'reader',
    query: z.object({}).strict(),
    body: createMigrationRequest,
    responses: { 200: { description: 'The verdicts', schema: preflightAnswer }, 404: { description: 'The project or source is not one the caller can see' }, 422: { description: 'Unknown target or flavor' } },
    handler: async ({ res, principal, body }) => {
      const answer = await runPreflight(deps, principal, body);
      res.json({ ...answer, verdicts: answer.verdicts.map(({ networks: _n, ...v }) => v) });
    },
  });
}
