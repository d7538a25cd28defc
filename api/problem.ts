import http from 'node:http';
import type { Duplex } from 'node:stream';
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
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'not-acceptable': { status: 406, title: 'None of the accepted media types can be produced' },
  'request-timeout': { status: 408, title: 'The request did not arrive in time' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body has an unsupported media type, encoding or charset' },
  'expectation-failed': { status: 417, title: 'The Expect header cannot be met' },
  'unprocessable-request': { status: 422, title: 'The request is well-formed but cannot be carried out' },
  'header-too-large': { status: 431, title: 'A request header is too large' },
  'internal-error': { status: 500, title: 'Internal error' },
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

/** A whole HTTP/1.1 answer as bytes, for where there is a socket but no response object (without the body to HEAD). */
function problemBytes(problem: HttpProblem, head: boolean): string {
  const body = JSON.stringify(problem.body());
  const headers = { 'Content-Type': PROBLEM_CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...problem.headers };
  return `HTTP/1.1 ${problem.status} ${http.STATUS_CODES[problem.status]}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${head ? '' : body}`;
}

function answerOnSocket(socket: Duplex, problem: HttpProblem, head = false): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(problemBytes(problem, head), () => socket.destroy());
}

/**
 * What Node's HTTP server would otherwise answer by itself, with a bare status line and no body: requests its parser
 * refuses (request line, header bytes, framing), heads over the size limit, requests that time out, an `Expect` other
 * than 100-continue; and CONNECT, which it would just hang up on. These become problems like every other error.
 */
export function answerProtocolErrorsAsProblems(server: http.Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: unknown; rawPacket?: unknown }, socket: Duplex) => {
    // As Node itself: answer only if no answer has started on this connection (it would corrupt that one).
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const reason = typeof err.reason === 'string' ? `: ${err.reason.slice(0, 200)}` : '';
    const problem =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new HttpProblem('header-too-large', 'the request line and headers together must stay under 16 KiB')
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? new HttpProblem('payload-too-large', 'chunk extensions too large')
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new HttpProblem('request-timeout', 'the request was not received completely in time')
            : new HttpProblem('invalid-request', `the request is not valid HTTP/1.1 (${String(err.code ?? 'unreadable')}${reason})`);
    // The bytes the parser refused: a HEAD request's answer must not have a body.
    const head = Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
    answerOnSocket(socket, problem, head);
  });
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const problem = new HttpProblem('expectation-failed', `cannot meet Expect: ${JSON.stringify(String(req.headers.expect).slice(0, 100))}; only 100-continue is supported`);
    const body = JSON.stringify(problem.body());
    res.writeHead(problem.status, { 'Content-Type': PROBLEM_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    answerOnSocket(socket, new HttpProblem('method-not-allowed', 'CONNECT is not supported: this is not a proxy', {}, { Allow: 'GET, HEAD, POST, OPTIONS' }));
  });
}
