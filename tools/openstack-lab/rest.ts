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

/** Errors of a connection that gave no answer: refused, or reset (a kept-alive socket the service had just closed). */
const NO_ANSWER = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/**
 * fetch, tried again (4 tries, 0.5 s, 1 s, 2 s apart) when the connection gave no answer at all. The lab's services
 * run under uwsgi and eventlet on a busy machine: a kept-alive socket closed by the service as the next request goes
 * out, or a listen queue full for a moment, fails a request that never reached the service. Seen once failing the
 * whole lab's start ("fetch failed") while the suite's TCG guests were booting.
 */
async function fetchAnswered(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      const code = ((err as { cause?: { code?: string } }).cause?.code ?? '') as string;
      if (attempt >= 4 || !NO_ANSWER.has(code)) throw err;
      await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    }
  }
}

export async function issueToken(authUrl: string, s: PasswordScope): Promise<Token> {
  const res = await fetchAnswered(`${authUrl}/auth/tokens`, {
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

/**
 * A 503 from keystonemiddleware: it could not validate the token with Keystone in time (Keystone's uwsgi workers busy
 * while the lab starts on a loaded machine), so the request never reached the service and sending it again is safe.
 * Seen failing the lab's start at its first flavor while two TCG guests and a Temporal cluster shared the cores.
 */
function refusedBeforeTheService(status: number, body: string): boolean {
  return status === 503 && body.includes('The Keystone service is temporarily unavailable');
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
  let res: Response;
  let text: string;
  for (let attempt = 1; ; attempt++) {
    res = await fetchAnswered(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    text = await res.text();
    if (attempt >= 5 || !refusedBeforeTheService(res.status, text)) break;
    await new Promise((r) => setTimeout(r, 1000 * attempt));
  }
  const ok = opts.expect ? opts.expect.includes(res.status) : res.status >= 200 && res.status < 300;
  if (!ok) throw new RestError(res.status, text, `${method} ${url}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
