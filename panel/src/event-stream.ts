import type { ApiClient } from './api-client';
import type { MigrationEvent } from './api-shapes';

export interface StreamHandlers {
  /** A durable event (it has an id) or live progress (no id: replaced by the next one of its kind). */
  event(e: MigrationEvent, id: string | undefined): void;
  /** The migration ended: no more events will come. */
  end(status: string): void;
  /** The stream broke; it is resumed from the last event's id after a pause. */
  interrupted?(why: string): void;
}

/**
 * A migration's events as Server-Sent Events. EventSource cannot send the caller's token, so the stream is read with
 * fetch; when it ends before the migration does (the server closes streams after a while, a network drop), it is
 * opened again with Last-Event-ID and goes on after the last durable event, as the API promises.
 */
export function followEvents(api: ApiClient, migrationId: string, on: StreamHandlers): () => void {
  const abort = new AbortController();
  let lastId: string | undefined;
  let ended = false;
  let retryMs = 1000;

  const dispatch = (block: string) => {
    let name = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join('\n')) as Record<string, unknown>;
    if (name === 'end') {
      ended = true;
      on.end(String(payload.status));
    } else if (name === 'error') on.interrupted?.(String(payload.detail ?? 'the stream reported an error'));
    else {
      if (id) lastId = id;
      on.event(payload as unknown as MigrationEvent, id);
    }
  };

  (async () => {
    while (!ended && !abort.signal.aborted) {
      try {
        const res = await fetch(`/migrations/${encodeURIComponent(migrationId)}/events`, {
          headers: api.headers({ accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }),
          signal: abort.signal,
        });
        if (!res.ok || !res.body) {
          const problem = (await res.json().catch(() => ({}))) as { detail?: string; title?: string };
          on.interrupted?.(problem.detail ?? problem.title ?? `the event stream answered ${res.status}`);
          if (res.status >= 400 && res.status < 500 && res.status !== 429) return;
        } else {
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffered = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffered += value.replace(/\r\n?/g, '\n');
            let cut: number;
            while ((cut = buffered.indexOf('\n\n')) >= 0) {
              dispatch(buffered.slice(0, cut));
              buffered = buffered.slice(cut + 2);
            }
          }
        }
      } catch (err) {
        if (abort.signal.aborted) return;
        on.interrupted?.((err as Error).message);
      }
      if (!ended) await new Promise((r) => setTimeout(r, retryMs));
    }
  })();
  return () => abort.abort();
}
