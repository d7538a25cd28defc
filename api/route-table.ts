import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { hasRole, type IdentityProvider, type Principal, type Role } from '../identity/identity-provider';
import { HttpProblem, invalidRequest } from './problem';
import { requestContext } from './request-context';

/**
 * The one place a route is declared: its method and path, the role it needs, the schemas of its path, query and
 * body, and its answers. Mounting a route wires authentication, the role check and validation in front of its
 * handler; the OpenAPI document is generated from the same declarations, so the two cannot drift apart.
 */

export interface RouteResponse {
  description: string;
  /** The JSON body's schema; absent for answers without one. */
  schema?: z.ZodType;
  /** Other media types this answer can have (e.g. text/event-stream). */
  alsoAs?: Record<string, { description: string }>;
}

export interface RouteContext<P, Q, B> {
  req: Request;
  res: Response;
  /** The caller (absent only on public routes). */
  principal: Principal;
  params: P;
  query: Q;
  body: B;
}

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: 'get' | 'post' | 'delete';
  /** Express form, e.g. `/migrations/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  /** The least role the caller needs; `public` routes need no token. */
  role: Role | 'public';
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Request headers the route reads, documented. */
  headers?: Array<{ name: string; description: string; schema: z.ZodType }>;
  responses: Record<number, RouteResponse>;
  handler(ctx: RouteContext<P, Q, B>): Promise<void> | void;
}

/** Typed declaration helper: infers P, Q, B from the schemas. */
export function route<P = Record<string, never>, Q = Record<string, never>, B = undefined>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> {
  return spec;
}

type AnyRoute = RouteSpec<any, any, any>;

const asyncHandler =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };

export function mountRoutes(app: Express, routes: AnyRoute[], identity: IdentityProvider): void {
  const authenticate = requestContext(identity);
  for (const r of routes) {
    const chain: RequestHandler[] = [];
    if (r.role !== 'public') {
      chain.push(authenticate);
      const needed = r.role;
      chain.push((_req: Request, res: Response, next: NextFunction) => {
        const p = res.locals.principal as Principal;
        if (!hasRole(p, needed)) next(new HttpProblem('forbidden', `${r.summary.replace(/\.$/, '')} needs the ${needed} role; you (${p.user}) have ${p.role}`));
        else next();
      });
    }
    chain.push(
      asyncHandler(async (req, res) => {
        const params = r.params ? r.params.safeParse(req.params) : { success: true as const, data: {} };
        if (!params.success) throw invalidRequest(params.error, 'path');
        const query = r.query ? r.query.safeParse(req.query) : { success: true as const, data: {} };
        if (!query.success) throw invalidRequest(query.error, 'query');
        let body: unknown;
        if (r.body) {
          const parsed = r.body.safeParse(req.body ?? {});
          if (!parsed.success) throw invalidRequest(parsed.error, 'body');
          body = parsed.data;
        }
        await r.handler({ req, res, principal: res.locals.principal as Principal, params: params.data, query: query.data, body });
      }),
    );
    app[r.method](r.path, ...chain);
  }
  // A known path with another method: 405 with the methods it has.
  const byPath = new Map<string, string[]>();
  for (const r of routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r.method.toUpperCase()]);
  for (const [path, methods] of byPath) {
    const allow = [...new Set([...methods, ...(methods.includes('GET') ? ['HEAD'] : [])])].join(', ');
    app.all(path, (req, _res, next) => {
      if (req.method === 'OPTIONS') {
        _res.setHeader('Allow', `${allow}, OPTIONS`);
        _res.status(204).end();
        return;
      }
      next(new HttpProblem('method-not-allowed', `${req.method} is not allowed here; allowed: ${allow}`, {}, { Allow: allow }));
    });
  }
}

const toSchema = (s: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' });

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, reason: { type: 'string' } }, required: ['field', 'reason'] } },
  },
};

function parametersOf(r: AnyRoute): unknown[] {
  const out: unknown[] = [];
  const add = (where: 'path' | 'query', s: z.ZodType | undefined) => {
    if (!s) return;
    const js = toSchema(s, 'input') as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, schema] of Object.entries(js.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema });
    }
  };
  add('path', r.params);
  add('query', r.query);
  for (const h of r.headers ?? []) out.push({ name: h.name, in: 'header', required: false, description: h.description, schema: toSchema(h.schema, 'input') });
  return out;
}

/** OpenAPI 3.1 for the declared routes. */
export function openApiDocument(routes: AnyRoute[], info: { title: string; version: string; description: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    for (const [status, resp] of Object.entries(r.responses)) {
      const content: Record<string, unknown> = {};
      if (resp.schema) content['application/json'] = { schema: toSchema(resp.schema, 'output') };
      for (const [type, x] of Object.entries(resp.alsoAs ?? {})) content[type] = { schema: { type: 'string', description: x.description } };
      responses[status] = { description: resp.description, ...(Object.keys(content).length ? { content } : {}) };
    }
    const problemStatuses = [400, ...(r.role !== 'public' ? [401, 403, 503] : []), ...(r.params ? [404] : []), ...(r.body ? [413, 415] : []), 405, 500];
    for (const s of problemStatuses) {
      responses[s] ??= { description: 'Problem details', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    }
    paths[path] ??= {};
    paths[path][r.method] = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      ...(r.role !== 'public' ? { security: [{ bearerAuth: [] }, { openstackToken: [] }], 'x-required-role': r.role } : { security: [] }),
      parameters: parametersOf(r),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(r.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token (static identity) or a Keystone token' },
        openstackToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token', description: 'A Keystone token, as OpenStack clients send it' },
      },
    },
  };
}
