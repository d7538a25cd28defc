import { z } from 'zod';
import type { Principal } from '../identity/identity-provider';
import { decodePageToken, encodePageToken, InvalidPageTokenError } from '../source/inventory-page';
import { sourceCheck, sourceInventory } from '../workflows/source-reads';
import { HttpProblem } from './problem';
import { route } from './route-table';
import { runWorkerRead, type WorkerRead } from './worker-reads';

/** A configured source as the API knows it: never a credential. */
export interface ApiSource {
  projects?: string[];
  /** The endpoint without user info, to show which vCenter or host this is. */
  url?: string;
  /** The bundled vSphere simulator, offered when nothing is configured: not a real vSphere. */
  lab?: boolean;
}

/** A source limited to projects is visible to callers of one of them; 404 otherwise, as if it did not exist. */
export function canUseSource(principal: Principal, source: ApiSource): boolean {
  if (!source.projects || principal.projects === '*') return true;
  return source.projects.some((p) => (principal.projects as string[]).includes(p));
}

export function sourceFor(sources: Record<string, ApiSource>, principal: Principal, id: string): ApiSource {
  const source = Object.prototype.hasOwnProperty.call(sources, id) ? sources[id] : undefined;
  if (!source || !canUseSource(principal, source)) throw new HttpProblem('not-found', `no source '${id}'`);
  return source;
}

const sourceIdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be a source id') }).strict();

const sourcesQuery = z.object({ check: z.enum(['true', 'false']).default('true').describe('check each source live (default true)') }).strict();

const inventoryQuery = z
  .object({
    name: z.string().min(1).max(200).optional().describe('case-insensitive part of the VM name'),
    folder: z.string().max(500).optional().describe('this folder and those below it, e.g. prod/web'),
    powerState: z.enum(['poweredOn', 'poweredOff', 'suspended']).optional(),
    host: z.string().min(1).max(200).optional().describe('host name or moref'),
    templates: z.enum(['true', 'false']).default('false').describe('list templates too'),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    pageToken: z.string().max(2000).optional(),
    maxAgeSeconds: z.coerce.number().int().min(0).max(3600).default(30).describe('serve an inventory read at most this old (0: read now)'),
  })
  .strict();

const connectivity = z.looseObject({
  reachable: z.boolean(),
  checkedAt: z.string(),
  apiType: z.string().optional(),
  apiVersion: z.string().optional(),
  product: z.string().optional(),
  latencyMs: z.number().optional(),
  error: z.string().optional(),
});

const sourceList = z.object({
  sources: z.array(
    z.looseObject({
      id: z.string(),
      url: z.string().optional(),
      kind: z.enum(['vcenter', 'esxi', 'unknown']).optional(),
      lab: z.boolean().optional(),
      projects: z.array(z.string()).optional(),
      connectivity: connectivity.optional(),
    }),
  ),
});

const inventoryDisk = z.looseObject({
  key: z.number().int(),
  label: z.string(),
  capacityBytes: z.number().int(),
  datastore: z.string(),
  fileName: z.string(),
  mode: z.string(),
  sharing: z.string(),
  backing: z.string(),
  rdmMode: z.string().optional(),
  controller: z.looseObject({ key: z.number().int(), type: z.string(), busNumber: z.number().int().optional(), unitNumber: z.number().int().optional() }),
});
const inventoryVm = z.looseObject({
  moref: z.string(),
  name: z.string(),
  template: z.boolean(),
  datacenter: z.string(),
  folder: z.string(),
  host: z.object({ moref: z.string(), name: z.string() }).optional(),
  powerState: z.string(),
  guest: z.looseObject({ id: z.string(), fullName: z.string().optional(), family: z.string().optional(), ipAddresses: z.array(z.string()) }),
  firmware: z.enum(['bios', 'efi']),
  secureBoot: z.boolean(),
  cpus: z.number().int(),
  memoryMB: z.number().int(),
  changeTracking: z.boolean(),
  snapshotCount: z.number().int(),
  tools: z.object({ runningStatus: z.string(), versionStatus: z.string() }),
  faultToleranceState: z.string(),
  disks: z.array(inventoryDisk),
  nics: z.array(z.looseObject({ key: z.number().int(), label: z.string(), macAddress: z.string(), network: z.string(), adapterType: z.string(), ipAddresses: z.array(z.string()) })),
  specialDevices: z.array(z.object({ kind: z.string(), key: z.number().int(), label: z.string() })),
});
const inventoryPage = z.object({ sourceId: z.string(), vms: z.array(inventoryVm), total: z.number().int(), readAt: z.string(), nextPageToken: z.string().optional() });

function kindOf(apiType: string | undefined): 'vcenter' | 'esxi' | 'unknown' {
  return apiType === 'VirtualCenter' ? 'vcenter' : apiType === 'HostAgent' ? 'esxi' : 'unknown';
}

/** GET /sources and GET /sources/:id/vms: what can be migrated from, read by a worker (which holds the credentials). */
export function sourceRoutes(deps: WorkerRead & { sources: Record<string, ApiSource> }) {
  return [
    route({
      method: 'get',
      path: '/sources',
      operationId: 'listSources',
      summary: 'The sources the caller may migrate from, each checked live (login and version) unless check=false.',
      role: 'reader',
      query: sourcesQuery,
      responses: { 200: { description: 'The sources', schema: sourceList } },
      handler: async ({ res, principal, query }) => {
        const visible = Object.entries(deps.sources).filter(([, s]) => canUseSource(principal, s));
        const checks =
          query.check === 'true' && visible.length
            ? await runWorkerRead(deps, sourceCheck, [{ sourceIds: visible.map(([id]) => id) }], { idPrefix: 'source-check', timeoutSeconds: 30, what: 'checking the sources' })
            : [];
        res.json({
          sources: visible.map(([id, s]) => {
            const check = checks.find((c) => c.sourceId === id);
            const { sourceId: _id, ...connectivity } = check ?? { sourceId: id };
            return {
              id,
              ...(s.url ? { url: s.url } : {}),
              ...(check?.reachable ? { kind: kindOf(check.apiType) } : {}),
              ...(s.lab ? { lab: true, description: 'the bundled vSphere simulator (a lab for trying vmigrate, not a real vSphere)' } : {}),
              ...(s.projects && principal.projects === '*' ? { projects: s.projects } : {}),
              ...(check ? { connectivity } : {}),
            };
          }),
        });
      },
    }),
    route({
      method: 'get',
      path: '/sources/:id/vms',
      operationId: 'listSourceVms',
      summary: "A source's inventory: VMs with placement, power, guest, CPUs, memory, disks, NICs, CBT, snapshots and Tools; filtered and paged.",
      description: 'Read with a ContainerView and the PropertyCollector by a worker, and cached there for maxAgeSeconds. Pages are in name order; pass nextPageToken as pageToken for the next one.',
      role: 'reader',
      params: sourceIdParam,
      query: inventoryQuery,
      responses: { 200: { description: 'A page of VMs', schema: inventoryPage } },
      handler: async ({ res, principal, params, query }) => {
        sourceFor(deps.sources, principal, params.id);
        let after;
        try {
          after = query.pageToken ? decodePageToken(query.pageToken) : undefined;
        } catch (err) {
          if (err instanceof InvalidPageTokenError) throw new HttpProblem('invalid-request', err.message, { errors: [{ field: 'query.pageToken', reason: err.message }] });
          throw err;
        }
        const page = await runWorkerRead(
          deps,
          sourceInventory,
          [
            {
              sourceId: params.id,
              filter: { name: query.name, folder: query.folder, powerState: query.powerState, host: query.host, includeTemplates: query.templates === 'true' },
              after,
              limit: query.limit,
              maxAgeSeconds: query.maxAgeSeconds,
            },
          ],
          { idPrefix: 'source-inventory', timeoutSeconds: 60, what: `reading the inventory of source '${params.id}'` },
        );
        res.json({ sourceId: params.id, vms: page.vms, total: page.total, readAt: page.readAt, ...(page.next ? { nextPageToken: encodePageToken(page.next) } : {}) });
      },
    }),
  ];
}
