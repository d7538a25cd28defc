import type { Response } from 'express';
import type { z } from 'zod';

/**
 * RFC 9457 problem details: every error the API answers is `application/problem+json` with a `type` URI naming the
 * kind of problem, a `title` that is the same for every instance of it, and a `detail` saying what to do about this
 * one. Field-level mistakes come as `errors: [{field, reason}]`.
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The kinds of problem the API reports; each has its own `type` URI and HTTP status. */
export const PROBLEMS = {
  'invalid-request': { status: 400, title: 'The request is not valid' },
  unauthenticated: { status: 401, title: 'A valid bearer token is required' },
  forbidden: { status: 403, title: 'Your role does not allow this' },
  'enrollment-refused': { status: 401, title: 'The enrollment key was refused' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'not-acceptable': { status: 406, title: 'None of the accepted media types can be produced' },
  'request-timeout': { status: 408, title: 'The request did not arrive in time' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body has an unsupported media type, encoding or charset' },
  'expectation-failed': { status: 417, title: 'The Expect header cannot be met' },
  'unprocessable-request': { status: 422, title: 'The request is well-formed but cannot be carried out' },
  'too-many-requests': { status: 429, title: 'Too many requests of this kind at once' },
  'header-too-large': { status: 431, title: 'A request header is too large' },
  'internal-error': { status: 500, title: 'Internal error' },
  'bad-gateway': { status: 502, title: 'A source or target refused what the API asked of it for you' },
  'service-unavailable': { status: 503, title: 'A service the API depends on is unavailable' },
} as const;

export type ProblemKind = keyof typeof PROBLEMS;

export const problemTypeUri = (kind: ProblemKind) => `urn:vmigrate:problem:${kind}`;

export interface FieldError {
  field: string;
  reason: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** Thrown by route handlers; the error middleware turns it into the problem answer. */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  constructor(
    readonly kind: ProblemKind,
    readonly detail?: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? PROBLEMS[kind].title);
  }

  get status(): number {
    return PROBLEMS[this.kind].status;
  }

  body(instance?: string): ProblemBody {
    return { type: problemTypeUri(this.kind), title: PROBLEMS[this.kind].title, status: this.status, ...(this.detail ? { detail: this.detail } : {}), ...(instance ? { instance } : {}), ...this.extensions };
  }
}

export function sendProblem(res: Response, problem: HttpProblem, instance?: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem.body(instance)));
}

/** zod issues as `{ field, reason }`. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((i) => ({ field: i.path.map(String).join('.') || '(body)', reason: i.message }));
}

export function invalidRequest(error: z.ZodError, where: 'body' | 'query' | 'path' | 'header'): HttpProblem {
  const errors = fieldErrors(error).map((e) => (where === 'body' ? e : { ...e, field: e.field === '(body)' ? `(${where})` : `${where}.${e.field}` }));
  return new HttpProblem('invalid-request', `the request ${where} has ${errors.length} problem(s): ${errors.map((e) => `${e.field}: ${e.reason}`).join('; ')}`.slice(0, 2000), { errors });
}

/**
 * Errors raised below the routes (body parsing, path decoding, oversized bodies) as problems: they carry an HTTP
 * status and a `type` of their own (body-parser's `entity.too.large`, `encoding.unsupported`, …). A status below 500
 * on such an error is the client's mistake and is reported as one; anything else is ours.
 */
export function problemOfLowerLayer(err: unknown): HttpProblem | undefined {
  if (err instanceof HttpProblem) return err;
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown; expose?: unknown; limit?: unknown; charset?: unknown; encoding?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  switch (e.type) {
    case 'entity.too.large':
      return new HttpProblem('payload-too-large', `the body is larger than the ${typeof e.limit === 'number' ? `${e.limit}-byte` : ''} limit`.replace('  ', ' '));
    case 'encoding.unsupported':
      return new HttpProblem('unsupported-media-type', `unsupported Content-Encoding ${JSON.stringify(String(e.encoding ?? ''))}; use identity, gzip, deflate or br`);
    case 'charset.unsupported':
      return new HttpProblem('unsupported-media-type', `unsupported charset ${JSON.stringify(String(e.charset ?? ''))}; send UTF-8 JSON`);
    case 'entity.parse.failed':
      return new HttpProblem('invalid-request', `the body is not valid JSON: ${String(e.message ?? '')}`.slice(0, 500), { errors: [{ field: '(body)', reason: 'not valid JSON' }] });
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new HttpProblem('invalid-request', 'the request body could not be read as sent (aborted, or its length does not match Content-Length)');
    case 'entity.verify.failed':
      return new HttpProblem('invalid-request', 'the request body was refused');
    case 'parameters.too.many':
      return new HttpProblem('payload-too-large', 'too many parameters');
  }
  if (err instanceof URIError) return new HttpProblem('invalid-request', 'the request path has malformed percent-encoding');
  if (status !== undefined && status >= 400 && status < 500) {
    if (status === 413) return new HttpProblem('payload-too-large');
    if (status === 415) return new HttpProblem('unsupported-media-type');
    if (status === 404) return new HttpProblem('not-found');
    return new HttpProblem('invalid-request', e.expose && typeof e.message === 'string' ? e.message.slice(0, 500) : undefined);
  }
  return undefined;
}
