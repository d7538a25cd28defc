/** Minimal OpenStack REST calls with Node's fetch: a token, then JSON requests with it. */

export interface Token {
  id: string;
  body: { token: { catalog?: CatalogEntry[]; project?: { id: string }; user: { id: string } } };
}

export interface CatalogEntry {
  type: string;
  name: string;
  endpoints: Array<{ interface: string; region: string; url: string }>;
}

export interface PasswordScope {
  username: string;
  password: string;
  projectName: string;
  userDomainName?: string;
  projectDomainName?: string;
}

export async function issueToken(authUrl: string, s: PasswordScope): Promise<Token> {
  const res = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: s.username, password: s.password, domain: { name: s.userDomainName ?? 'Default' } } },
        },
        scope: { project: { name: s.projectName, domain: { name: s.projectDomainName ?? 'Default' } } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`token for ${s.username}: HTTP ${res.status} ${await res.text()}`);
  return { id: res.headers.get('x-subject-token')!, body: (await res.json()) as Token['body'] };
}

export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 2000)}`);
  }
}

/** A JSON call; `expect` lists the acceptable statuses (default: any 2xx). */
export async function call<T = any>(
  token: string | undefined,
  method: string,
  url: string,
  body?: unknown,
  opts: { expect?: number[]; headers?: Record<string, string> } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (token) headers['x-auth-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const ok = opts.expect ? opts.expect.includes(res.status) : res.status >= 200 && res.status < 300;
  if (!ok) throw new RestError(res.status, text, `${method} ${url}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
