import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KeystoneIdentityConfig } from '../../identity/identity-config';
import { IdentityUnavailableError } from '../../identity/identity-provider';
import { KeystoneIdentity } from '../../identity/keystone-identity';
import { call, issueToken } from '../../tools/openstack-lab/rest';
import { createLabProject, type LabProject } from '../harness/openstack-lab';

/**
 * The API's Keystone identity backend against the lab's real Keystone: callers' own tokens validated as their own
 * subject, the highest default role they hold, revocation, and what is cached (counted through a local proxy).
 */

interface Proxy {
  url: string;
  /** Token validations that reached Keystone through this proxy. */
  calls: number;
  close(): Promise<void>;
}

/** A local HTTP proxy in front of the lab's Keystone that counts the requests it forwards. */
async function countingProxy(target: string): Promise<Proxy> {
  const upstream = new URL(target);
  const proxy = {
    calls: 0,
    url: '',
    close: async () => undefined,
  } as Proxy;
  const server = http.createServer((req, res) => {
    proxy.calls++;
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname.replace(/\/+$/, '')}`;
  proxy.close = () => new Promise((r) => server.close(() => r()));
  return proxy;
}

/** A local server answering every request with `handler` (a Keystone that fails in some way). */
async function fakeKeystone(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`;
  return {
    url,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** What Keystone said about an issued token, beyond what tools/openstack-lab/rest.ts types. */
const issued = (tok: { body: { token: object } }) => tok.body.token as { expires_at: string; roles: Array<{ name: string }> };
const roleNames = (tok: { body: { token: object } }) => issued(tok).roles.map((r) => r.name).sort();

const cfg = (authUrl: string, cacheSeconds: number): KeystoneIdentityConfig => ({ backend: 'keystone', authUrl, insecure: false, cacheSeconds, projectDomain: 'Default' });

describe('Keystone identity of the API', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-identity-'));
  let p: LabProject;
  let proxy: Proxy;
  const memberToken = () => issueToken(p.lab.authUrl, { username: p.username, password: p.password, projectName: p.projectName });
  const revoke = async (token: string) =>
    call(await p.adminToken(), 'DELETE', `${p.lab.authUrl}/auth/tokens`, undefined, { expect: [204], headers: { 'x-subject-token': token } });

  beforeAll(async () => {
    p = await createLabProject('identity', dir);
    proxy = await countingProxy(p.lab.authUrl);
  }, 600_000);
  afterAll(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a project of the same name in another domain is not that project: its token sees none', async () => {
    const admin = await p.adminToken();
    const suffix = `${process.pid}-${Date.now().toString(36)}`;
    const domain = (await call(admin, 'POST', `${p.lab.authUrl}/domains`, { domain: { name: `other-${suffix}` } })).domain;
    const project = (await call(admin, 'POST', `${p.lab.authUrl}/projects`, { project: { name: p.projectName, domain_id: domain.id } })).project;
    const user = (await call(admin, 'POST', `${p.lab.authUrl}/users`, { user: { name: `twin-${suffix}`, password: 'twin-password', domain_id: domain.id } })).user;
    const roles = (await call(admin, 'GET', `${p.lab.authUrl}/roles?name=member`)).roles;
    await call(admin, 'PUT', `${p.lab.authUrl}/projects/${project.id}/users/${user.id}/roles/${roles[0].id}`, undefined, { expect: [204] });
    const twin = await issueToken(p.lab.authUrl, { username: user.name, password: 'twin-password', userDomainName: domain.name, projectName: p.projectName, projectDomainName: domain.name });
    const identity = new KeystoneIdentity(cfg(p.lab.authUrl, 0));
    // Same project name, member role, valid token: but not the project migrations into p.projectName act in.
    expect(await identity.authenticate(twin.id)).toMatchObject({ user: user.name, projects: [], role: 'member' });
    // Configured for that domain (by name or id), the same token is that domain's project.
    expect(await new KeystoneIdentity({ ...cfg(p.lab.authUrl, 0), projectDomain: domain.id }).authenticate(twin.id)).toMatchObject({ projects: [p.projectName] });
  });

  test("a member's project-scoped token: its user, its project, role member, its expiry", async () => {
    const tok = await memberToken();
    // Keystone's implied roles: a member's token lists reader too (the highest is what counts).
    expect(roleNames(tok)).toEqual(['member', 'reader']);
    const identity = new KeystoneIdentity(cfg(p.lab.authUrl, 300));
    const principal = await identity.authenticate(tok.id);
    expect(principal).toEqual({
      user: p.username,
      userId: tok.body.token.user.id,
      projects: [p.projectName],
      role: 'member',
      via: 'keystone',
      expiresAt: Date.parse(issued(tok).expires_at),
    });
  });

  test("an admin's token: role admin, its project", async () => {
    const tok = await issueToken(p.lab.authUrl, p.lab.admin);
    const principal = await new KeystoneIdentity(cfg(p.lab.authUrl, 0)).authenticate(tok.id);
    expect(principal).toMatchObject({ user: p.lab.admin.username, projects: [p.lab.admin.projectName], role: 'admin', via: 'keystone' });
  });

  test("a system-scoped admin token: role admin, no project", async () => {
    const { username, password } = p.lab.admin;
    const res = await fetch(`${p.lab.authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: username, password, domain: { name: 'Default' } } } }, scope: { system: { all: true } } } }),
    });
    expect(res.status).toBe(201);
    const principal = await new KeystoneIdentity(cfg(p.lab.authUrl, 0)).authenticate(res.headers.get('x-subject-token')!);
    expect(principal).toMatchObject({ user: username, projects: [], role: 'admin', via: 'keystone' });
  });

  test("application credentials: a plain one acts as its project's member; one limited by access rules is refused by Keystone", async () => {
    const member = await memberToken();
    const userId = member.body.token.user.id;
    const tokenOf = async (accessRules?: unknown[]) => {
      const cred = await call<{ application_credential: { id: string; secret: string } }>(member.id, 'POST', `${p.lab.authUrl}/users/${userId}/application_credentials`, {
        application_credential: { name: `id-${Date.now()}-${Math.random().toString(36).slice(2)}`, ...(accessRules ? { access_rules: accessRules } : {}) },
      });
      const res = await fetch(`${p.lab.authUrl}/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: cred.application_credential } } }),
      });
      expect(res.status).toBe(201);
      return res.headers.get('x-subject-token')!;
    };
    const identity = new KeystoneIdentity(cfg(p.lab.authUrl, 0));
    expect(await identity.authenticate(await tokenOf())).toMatchObject({ user: p.username, userId, projects: [p.projectName], role: 'member' });
    // Keystone answers 404 when such a token asks to validate itself: its access rules name only Nova.
    expect(await identity.authenticate(await tokenOf([{ service: 'compute', method: 'GET', path: '/v2.1/servers' }]))).toBeUndefined();
  });

  test('a token revoked through Keystone is refused at once when nothing is cached', async () => {
    const tok = await memberToken();
    const identity = new KeystoneIdentity(cfg(p.lab.authUrl, 0));
    expect((await identity.authenticate(tok.id))?.role).toBe('member');
    await revoke(tok.id);
    expect(await identity.authenticate(tok.id)).toBeUndefined();
  });

  test('cached: one call for repeated and concurrent requests, revocation seen only when the cache time has passed', async () => {
    let clock = Date.now();
    const identity = new KeystoneIdentity(cfg(proxy.url, 60), () => clock);
    const tok = await memberToken();
    const before = proxy.calls;

    const together = await Promise.all(Array.from({ length: 5 }, () => identity.authenticate(tok.id)));
    expect(together.every((x) => x?.user === p.username)).toBe(true);
    expect(proxy.calls - before).toBe(1);
    expect((await identity.authenticate(tok.id))?.role).toBe('member');
    expect(proxy.calls - before).toBe(1);
    // What a caller does to its principal does not change what the cache serves.
    (together[0]!.projects as string[]).push('someone-elses');
    expect((await identity.authenticate(tok.id))?.projects).toEqual([p.projectName]);

    await revoke(tok.id);
    clock += 59_000;
    expect((await identity.authenticate(tok.id))?.role).toBe('member');
    expect(proxy.calls - before).toBe(1);

    clock += 2_000;
    expect(await identity.authenticate(tok.id)).toBeUndefined();
    expect(proxy.calls - before).toBe(2);
    // The refusal is kept briefly too: a flood of it does not reach Keystone.
    for (let i = 0; i < 20; i++) expect(await identity.authenticate(tok.id)).toBeUndefined();
    expect(proxy.calls - before).toBe(2);
    clock += 11_000;
    expect(await identity.authenticate(tok.id)).toBeUndefined();
    expect(proxy.calls - before).toBe(3);
  });

  test('never trusted past its expiry, however long the cache time', async () => {
    let clock = Date.now();
    const identity = new KeystoneIdentity(cfg(proxy.url, 3600), () => clock);
    const tok = await memberToken();
    const principal = await identity.authenticate(tok.id);
    const before = proxy.calls;
    clock = principal!.expiresAt! + 1;
    // Keystone's own clock still finds it valid; the point is that the cache asked again.
    await identity.authenticate(tok.id);
    expect(proxy.calls - before).toBe(1);
  });

  test('garbage is refused: by Keystone when it looks like a token, without asking when it cannot be one', async () => {
    const identity = new KeystoneIdentity(cfg(proxy.url, 300));
    let before = proxy.calls;
    expect(await identity.authenticate('gAAAAABnot-a-real-fernet-token')).toBeUndefined();
    expect(await identity.authenticate('x'.repeat(200))).toBeUndefined();
    expect(proxy.calls - before).toBe(2);

    before = proxy.calls;
    for (const bad of ['', 'x'.repeat(8 * 1024 + 1), 'has space', 'line\nbreak', 'tab\tsep', 'nul\0', 'ünïcode', '\x7f']) {
      expect(await identity.authenticate(bad)).toBeUndefined();
    }
    expect(proxy.calls - before).toBe(0);
  });

  test('the cache is bounded: the oldest answers go first', async () => {
    const identity = new KeystoneIdentity(cfg(proxy.url, 300), Date.now, { maxEntries: 2 });
    const before = proxy.calls;
    for (const t of ['bad-one', 'bad-two', 'bad-three']) await identity.authenticate(t);
    expect(proxy.calls - before).toBe(3);
    await identity.authenticate('bad-three');
    await identity.authenticate('bad-two');
    expect(proxy.calls - before).toBe(3);
    await identity.authenticate('bad-one');
    expect(proxy.calls - before).toBe(4);
  });

  test('a user whose only role is a custom one (no reader, member or admin) is refused', async () => {
    const admin = await p.adminToken();
    const k = p.lab.authUrl;
    const unique = `${process.pid}-${Date.now().toString(36)}`;
    const role = await call<{ role: { id: string } }>(admin, 'POST', `${k}/roles`, { role: { name: `observer-${unique}` } });
    const user = await call<{ user: { id: string } }>(admin, 'POST', `${k}/users`, { user: { name: `obs-${unique}`, password: `pw-${unique}`, domain_id: 'default' } });
    await call(admin, 'PUT', `${k}/projects/${p.projectId}/users/${user.user.id}/roles/${role.role.id}`, undefined, { expect: [204] });
    const tok = await issueToken(k, { username: `obs-${unique}`, password: `pw-${unique}`, projectName: p.projectName });
    expect(roleNames(tok)).toEqual([`observer-${unique}`]);

    expect(await new KeystoneIdentity(cfg(k, 300)).authenticate(tok.id)).toBeUndefined();
  });

  test('an unscoped token carries no role: refused', async () => {
    const res = await fetch(`${p.lab.authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: { identity: { methods: ['password'], password: { user: { name: p.username, password: p.password, domain: { name: 'Default' } } } }, scope: 'unscoped' },
      }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { token: { project?: unknown; roles?: unknown[] } };
    expect(body.token.project).toBeUndefined();
    expect(await new KeystoneIdentity(cfg(p.lab.authUrl, 300)).authenticate(res.headers.get('x-subject-token')!)).toBeUndefined();
  });

  test('Keystone unreachable: IdentityUnavailableError naming its URL, never the token', async () => {
    const tok = await memberToken();
    const authUrl = `http://127.0.0.1:${await closedPort()}/v3`;
    const err = await new KeystoneIdentity(cfg(authUrl, 300)).authenticate(tok.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityUnavailableError);
    expect((err as Error).message).toContain(authUrl);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(String((err as Error).stack)).not.toContain(tok.id);
    expect(JSON.stringify(err)).not.toContain(tok.id);
    expect((err as Error).cause).toBeUndefined();
  });

  test('Keystone failing (5xx echoing the token, a hang, a 403 policy refusal): unavailable, not refused, and not cached', async () => {
    const token = 'gAAAAAB-secret-token-value';
    let hits = 0;
    const failing = await fakeKeystone((req, res) => {
      hits++;
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 500, title: 'Internal Server Error', message: `database gone while validating ${req.headers['x-subject-token']}` } }));
    });
    const hanging = await fakeKeystone(() => undefined);
    const forbidding = await fakeKeystone((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 403, title: 'Forbidden', message: 'You are not authorized to perform the requested action: identity:validate_token.' } }));
    });
    try {
      const identity = new KeystoneIdentity(cfg(failing.url, 300));
      for (let i = 0; i < 2; i++) {
        const err = await identity.authenticate(token).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(IdentityUnavailableError);
        expect((err as Error).message).toContain(failing.url);
        expect((err as Error).message).toContain('HTTP 500 database gone while validating [token]');
        expect(String((err as Error).stack)).not.toContain(token);
      }
      expect(hits).toBe(2);

      const timedOut = await new KeystoneIdentity(cfg(hanging.url, 300), Date.now, { timeoutMs: 500 }).authenticate(token).catch((e: unknown) => e);
      expect(timedOut).toBeInstanceOf(IdentityUnavailableError);
      expect((timedOut as Error).message).toMatch(new RegExp(`^cannot reach Keystone at ${hanging.url}: validating a token timed out`));
      expect((timedOut as Error).message).not.toContain(token);

      const refused = await new KeystoneIdentity(cfg(forbidding.url, 300)).authenticate(token).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(IdentityUnavailableError);
      expect((refused as Error).message).toMatch(/rule:token_subject/);
    } finally {
      await Promise.all([failing.close(), hanging.close(), forbidding.close()]);
    }
  });
});
