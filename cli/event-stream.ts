import { CliError } from './cli-errors';
import { problemLine, type ApiClient } from './api-client';

/** One Server-Sent Event of a migration's stream. */
export interface StreamEvent {
  id?: string;
  event: string;
  data: any;
}

/**
 * A migration's events as the API streams them (text/event-stream), resuming with Last-Event-ID when the server
 * ends a stream early (it does after its maximum duration) until the `end` event.
 */
export async function* followEvents(api: ApiClient, id: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<StreamEvent> {
  let lastId: string | undefined;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(api.url(`/migrations/${encodeURIComponent(id)}/events`), {
        headers: api.headers({ accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }),
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (attempt < 5) {
        await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
        continue;
      }
      throw new CliError(`the event stream of ${id} broke: ${(err as Error).message}`);
    }
    if (!res.ok) throw new CliError(problemLine(res.status, await res.text()));
    let ended = false;
    for await (const ev of parseSse(res.body!)) {
      if (ev.id) lastId = ev.id;
      yield ev;
      if (ev.event === 'end') ended = true;
    }
    if (ended || opts.signal?.aborted) return;
  }
}

/** The SSE wire format: fields per line, events separated by a blank line, comments start with ':'. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let cur: { id?: string; event?: string; data: string[] } = { data: [] };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (cur.data.length || cur.event) {
          const text = cur.data.join('\n');
          let data: unknown = text;
          try {
            data = JSON.parse(text);
          } catch {
            // plain text data stays text
          }
          yield { id: cur.id, event: cur.event ?? 'message', data };
        }
        cur = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') cur.data.push(value);
      else if (field === 'event') cur.event = value;
      else if (field === 'id') cur.id = value;
    }
  }
}
