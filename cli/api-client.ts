import { CliError } from './cli-errors';

/**
 * The API as the CLI calls it: JSON in and out, the token on every request, and every refusal turned into one line
 * from the API's problem details (`422 The request is well-formed but cannot be carried out: preflight refused …`).
 */
export interface ApiClientOptions {
  url: string;
  token?: string;
  /** Per-request timeout (default 120 s: a preflight may take a while). */
  timeoutMs?: number;
}

export class ApiClient {
  constructor(private readonly opts: ApiClientOptions) {}

  get baseUrl(): string {
    return this.opts.url.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { accept: 'application/json', ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...extra };
  }

  url(path: string, query: Record<string, string | number | boolean | undefined> = {}): URL {
    const u = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    return u;
  }

  async get<T = any>(path: string, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    return this.send<T>('GET', this.url(path, query));
  }

  async post<T = any>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.send<T>('POST', this.url(path), body, headers);
  }

  private async send<T>(method: string, url: URL, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: this.headers({ ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 120_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the vmigrate API at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new CliError(problemLine(res.status, text));
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** "401 A valid bearer token is required: the token is not valid" from a problem+json body (or the raw text). */
export function problemLine(status: number, text: string): string {
  try {
    const p = JSON.parse(text) as { title?: string; detail?: string };
    return `${status} ${p.title ?? 'error'}${p.detail ? `: ${p.detail}` : ''}`.replace(/\s+/g, ' ').trim();
  } catch {
    return `${status} ${text.slice(0, 300)}`.replace(/\s+/g, ' ').trim();
  }
}
