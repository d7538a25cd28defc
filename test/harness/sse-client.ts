import http from 'node:http';

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads a Server-Sent Events stream as a browser's EventSource would parse it (id, event, data lines; a blank line
 * ends an event; comments ignored), until the server ends it or `until` says stop.
 */
export function readEventStream(url: string, headers: Record<string, string>, opts: { until?: (e: SseEvent) => boolean; timeoutMs?: number } = {}): Promise<{ status: number; contentType?: string; events: SseEvent[] }> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      let buf = '';
      let cur: Partial<SseEvent> & { data?: string } = {};
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`event stream still open after ${opts.timeoutMs ?? 120_000} ms; got ${events.map((e) => e.event).join(', ')}`));
      }, opts.timeoutMs ?? 120_000);
      const finish = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], events });
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (cur.data !== undefined) {
              const e: SseEvent = { event: cur.event ?? 'message', data: cur.data, ...(cur.id !== undefined ? { id: cur.id } : {}) };
              events.push(e);
              if (opts.until?.(e)) {
                req.destroy();
                finish();
                return;
              }
            }
            cur = {};
          } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'data') cur.data = cur.data === undefined ? value : `${cur.data}\n${value}`;
            else if (field === 'event') cur.event = value;
            else if (field === 'id') cur.id = value;
          }
        }
      });
      res.on('end', finish);
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });
}
