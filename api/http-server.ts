import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Express, Response } from 'express';
import type { Logger } from 'pino';
import { HttpProblem, PROBLEM_CONTENT_TYPE, sendProblem } from './problem';

/**
 * The API's HTTP server, so that every answer is a problem, also those Node's HTTP server gives by itself (requests
 * its parser refuses, oversized heads, unmet Expect, CONNECT) and Express's HTML last resort (a request target its
 * router cannot parse at all, like `http://[::1`, or an error that escapes the error handler).
 */

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
function answerProtocolErrorsAsProblems(server: http.Server): void {
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

/** `app.listen` with such a server; like Express's own, a callback also hears of a failure to listen, once. */
export function problemAnsweringListen(app: Express, logger: Logger): Express['listen'] {
  const handle = app as unknown as (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => void;
  return function listen(...args: unknown[]) {
    const server = http.createServer({ requireHostHeader: false }, (req, res) =>
      handle(req, res, (err?: unknown) => {
        if (err != null) logger.error({ err, method: req.method }, 'request failed');
        const problem = err == null ? new HttpProblem('invalid-request', 'the request target is not a valid URL') : new HttpProblem('internal-error', 'the request failed on the server; its log has the cause');
        sendProblem(res as Response, problem);
      }),
    );
    answerProtocolErrorsAsProblems(server);
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      let called = false;
      const once = (err?: Error) => void (called || ((called = true), callback(err)));
      args[args.length - 1] = once;
      server.once('error', once);
    }
    return server.listen(...(args as Parameters<typeof server.listen>));
  } as Express['listen'];
}
