import { z } from 'zod';
import { canSeeProject } from '../identity/identity-provider';
import type { TargetCatalog } from '../targets/target-catalog';
import { targetChoices } from '../workflows/target-reads';
import { HttpProblem } from './problem';
import { route } from './route-table';
import { runWorkerRead, type WorkerRead } from './worker-reads';

const targetNameParam = z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be a configured target name') }).strict();
const choicesQuery = z.object({ project: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be a project name') }).strict();

const named = z.looseObject({ name: z.string() });
const targetList = z.object({ defaultTarget: z.string(), targets: z.array(z.object({ name: z.string(), kind: z.enum(['local', 'openstack', 'libvirt']), default: z.boolean() })) });
const targetChoicesAnswer = z.object({
  target: z.string(),
  project: z.string(),
  flavors: z.array(z.looseObject({ name: z.string(), vcpus: z.number(), ramMB: z.number(), diskGB: z.number().optional() })),
  volumeTypes: z.array(named).optional().describe('absent: the target takes any volume type name'),
  networks: z.array(named.extend({ subnets: z.array(named) })).optional().describe('absent: the target takes any network name'),
  availabilityZones: z.array(z.string()).optional(),
  volumeAvailabilityZones: z.array(z.string()).optional(),
});

/**
 * GET /targets and GET /targets/:name/choices: where migrations can land, and what a project may choose there
 * (flavors, volume types, networks with their subnets, zones), read by a worker with the target's credentials.
 */
export function targetRoutes(deps: WorkerRead & { targets: TargetCatalog }) {
  return [
    route({
      method: 'get',
      path: '/targets',
      operationId: 'listTargets',
      summary: 'The configured targets: name, kind, and which one a migration gets when it names none.',
      role: 'reader',
      query: z.object({}).strict(),
      responses: { 200: { description: 'The targets', schema: targetList } },
      handler: ({ res }) =>
        void res.json({ defaultTarget: deps.targets.defaultTarget, targets: deps.targets.entries.map((e) => ({ name: e.name, kind: e.kind, default: e.name === deps.targets.defaultTarget })) }),
    }),
    route({
      method: 'get',
      path: '/targets/:name/choices',
      operationId: 'getTargetChoices',
      summary: "What a project may choose from in a target: flavors, volume types, networks with their subnets, availability zones.",
      description: 'Read by a worker in the project. A list left out means the target takes any name there.',
      role: 'reader',
      params: targetNameParam,
      query: choicesQuery,
      responses: { 200: { description: 'The choices', schema: targetChoicesAnswer }, 404: { description: 'No such target, or a project the caller cannot see' } },
      handler: async ({ res, principal, params, query }) => {
        if (!deps.targets.entries.some((e) => e.name === params.name)) throw new HttpProblem('not-found', `no target '${params.name}'`);
        if (!canSeeProject(principal, query.project)) throw new HttpProblem('not-found', `no project '${query.project}'`);
        const choices = await runWorkerRead(deps, targetChoices, [{ target: params.name, project: query.project }], { idPrefix: 'target-choices', timeoutSeconds: 30, what: `reading target ${params.name}` });
        res.json({ target: params.name, project: query.project, ...choices });
      },
    }),
  ];
}
