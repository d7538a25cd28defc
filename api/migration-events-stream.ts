import type { Request, Response } from 'express';
import type { MigrationEvent } from './migration-view';
import type { WorkflowRecord } from './workflow-history';

/**
 * GET /migrations/:id/events as Server-Sent Events. The migration's events are read from Temporal every poll, as
 * the JSON view reads them; each durable event goes out once, in order, with an id `<time ms>.<n>` (n counts events
 * of the same millisecond) so a client that reconnects with `Last-Event-ID` gets exactly what follows. Live progress
 * (from heartbeats) goes out without an id whenever it changes. The stream ends with an `end` event once the
 * migration has ended and its last events are out.
 */

export interface EventStreamOptions {
  pollMs: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  keepAliveMs: number;
  /** The stream ends after this long (the client reconnects with Last-Event-ID), so no reader holds one forever. */
  maxMs: number;
}

type Cursor = { time: number; n: number };

export function parseEventId(id: string | undefined): Cursor | undefined {
  const m = id ? /^(\d{1,15})\.(\d{1,6})$/.exec(id.trim()) : null;
  return m ? { time: Number(m[1]), n: Number(m[2]) } : undefined;
}

const after = (a: Cursor, b: Cursor) => a.time > b.time || (a.time === b.time && a.n > b.n);

/** Durable events with their stream ids. */
export function identifiedEvents(events: MigrationEvent[]): Array<{ id: string; cursor: Cursor; event: MigrationEvent }> {
  const out: Array<{ id: string; cursor: Cursor; event: MigrationEvent }> = [];
  let last: Cursor | undefined;
  for (const event of events) {
    if (event.live) continue;
    const time = Date.parse(event.time);
    const n = last && last.time === time ? last.n + 1 : 0;
    last = { time, n };
    out.push({ id: `${time}.${n}`, cursor: last, event });
  }
  return out;
}

export async function streamEvents(
  req: Request,
  res: Response,
  read: () => Promise<{ record: WorkflowRecord; events: MigrationEvent[] }>,
  opts: EventStreamOptions,
): Promise<void> {
  const lastEventId = req.header('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  let cursor: Cursor = parseEventId(lastEventId) ?? { time: -1, n: 0 };
  let closed = false;
  req.on('close', () => {
    closed = true;
  });
  // The first read happens before any header goes out, so an error still becomes a problem answer.
  let snapshot = await read();
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.write(`retry: ${Math.max(1000, opts.pollMs)}\n\n`);
  const liveSent = new Map<string, string>();
  let lastWrite = Date.now();
  const endBy = Date.now() + opts.maxMs;
  const write = (chunk: string) => {
    res.write(chunk);
    lastWrite = Date.now();
  };
  while (!closed) {
    for (const { id, cursor: c, event } of identifiedEvents(snapshot.events)) {
      if (!after(c, cursor)) continue;
      write(`id: ${id}\nevent: ${event.name}\ndata: ${JSON.stringify(event)}\n\n`);
      cursor = c;
    }
    for (const event of snapshot.events.filter((e) => e.live)) {
      const key = `${event.name}/${event.disk ?? ''}`;
      const data = JSON.stringify(event);
      if (liveSent.get(key) === data) continue;
      liveSent.set(key, data);
      write(`event: ${event.name}\ndata: ${data}\n\n`);
    }
    if (snapshot.record.closedAt !== undefined) {
      write(`event: end\ndata: ${JSON.stringify({ status: snapshot.record.status })}\n\n`);
      break;
    }
    if (Date.now() >= endBy) break; // without `end`: the client reconnects and resumes
    await new Promise((r) => setTimeout(r, opts.pollMs));
    if (closed) break;
    if (Date.now() - lastWrite >= opts.keepAliveMs) write(': keep-alive\n\n');
    try {
      snapshot = await read();
    } catch (err) {
      // Headers are out: say why in the stream and end it; the client reconnects with its Last-Event-ID.
      write(`event: error\ndata: ${JSON.stringify({ detail: `reading the migration failed: ${(err as Error).message}` })}\n\n`);
      break;
    }
  }
  res.end();
}
