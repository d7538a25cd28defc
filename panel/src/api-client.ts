/** An RFC 9457 problem as the API answers it, with the fields it names (`errors[].field`, like `body.target.project`). */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
    readonly errors: Array<{ field: string; reason: string }>,
    readonly body: Record<string, unknown>,
  ) {
    super(detail ?? title);
  }

  /** The reasons given for one field (and the fields under it), for showing at that field. */
  reasonsFor(field: string): string[] {
    // The API names body fields from the body's root (`target.volumeType`); some answers prefix them with `body.`.
    const named = (f: string) => f.replace(/^body\./, '');
    return this.errors.filter((e) => named(e.field) === field || named(e.field).startsWith(`${field}.`)).map((e) => e.reason);
  }
}

type Query = Record<string, string | number | boolean | undefined>;

/**
 * The panel's only way to the API: the caller's token on every request, query strings built by URLSearchParams and
 * path segments encoded, so nothing typed into the panel changes which resource is asked for.
 */
export class ApiClient {
  constructor(
    private readonly token: string,
    private readonly onUnauthenticated: () => void = () => undefined,
  ) {}

  static path(template: string, params: Record<string, string> = {}): string {
    return template.replace(/:([A-Za-z]+)/g, (_m, k: string) => encodeURIComponent(params[k] ?? ''));
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, accept: 'application/json, application/problem+json', ...extra };
  }

  async request<T>(method: 'GET' | 'POST', path: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') qs.set(k, String(v));
    const url = qs.size ? `${path}?${qs}` : path;
    const res = await fetch(url, {
      method,
      headers: this.headers({ ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers }),
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok) {
      if (res.status === 401) this.onUnauthenticated();
      throw new ApiProblem(res.status, String(body.title ?? res.statusText), body.detail as string | undefined, (body.errors as ApiProblem['errors']) ?? [], body);
    }
    return body as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body: unknown = {}, headers?: Record<string, string>): Promise<T> {
    return this.request<T>('POST', path, { body, headers });
  }
}
