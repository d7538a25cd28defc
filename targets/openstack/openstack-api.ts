import { faultError, parseFault } from './openstack-errors';
import type { KeystoneSession, ProjectToken, ServiceType } from './keystone-session';

/**
 * JSON calls to one service in one project, with the project's token. Paths are built by the callers from fixed
 * segments and ids the cloud returned; anything else (names, metadata filters) goes through `query`, encoded.
 */

export interface CallOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  /** e.g. "volume 3.44" or "compute 2.67". */
  microversion?: string;
  /** Status codes that are answers, not errors (e.g. 404 for "is it still there?"). */
  accept?: number[];
  /** What the call does, for error messages. */
  what: string;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  /** The request's id (x-openstack-request-id): how Nova's instance actions name what a request did. */
  requestId?: string;
}

export class OpenStackApi {
  constructor(
    private readonly keystone: KeystoneSession,
    readonly project: string,
    private readonly service: ServiceType,
  ) {}

  async call<T = any>(method: string, path: string, opts: CallOptions): Promise<ApiResponse<T>> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.keystone.token(this.project);
      const res = await this.send(token, method, path, opts);
      const text = await res.text();
      // A token revoked before its expiry: issue a new one once, then let a second refusal speak.
      if (res.status === 401 && attempt === 0) {
        this.keystone.invalidate(this.project, token.token);
        continue;
      }
      if (res.ok || opts.accept?.includes(res.status)) {
        const requestId = res.headers.get('x-openstack-request-id') ?? res.headers.get('x-compute-request-id') ?? undefined;
        return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, ...(requestId ? { requestId } : {}) };
      }
      throw faultError(parseFault(res.status, text), opts.what);
    }
  }

  /** The project's id (a migration may name its project by name). */
  async projectId(): Promise<string> {
    return (await this.keystone.token(this.project)).projectId;
  }

  private async send(token: ProjectToken, method: string, path: string, opts: CallOptions): Promise<Response> {
    const url = new URL(this.keystone.endpoint(token, this.service) + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { 'x-auth-token': token.token, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.microversion) headers['openstack-api-version'] = opts.microversion;
    try {
      return await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      throw new Error(`${opts.what}: cannot reach ${this.service} at ${url.origin}: ${(err as Error).message}`);
    }
  }
}

/** Poll `probe` until it returns a value, or fail with `timeoutMessage` after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; timeoutMessage: () => string; intervalMs?: number; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 250;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(opts.timeoutMessage());
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(interval * 1.5, 2000);
  }
}
