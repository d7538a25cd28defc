import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../config/vmigrate-config';
import { ensureAdminToken } from '../../identity/admin-token';
import { identityFromConfig } from '../../identity/identity-from-config';
import { StaticIdentity, newApiToken, tokenHash } from '../../identity/static-identity';

describe('static API tokens', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-identity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('knows a token by its SHA-256 only, with its user, projects and role, until it expires', async () => {
    const token = newApiToken();
    expect(token).toMatch(/^vmt_[A-Za-z0-9_-]{32}$/);
    let now = Date.parse('2026-12-01T12:00:00Z');
    const identity = new StaticIdentity(
      {
        backend: 'static',
        tokens: [
          { sha256: tokenHash(token), user: 'alice', projects: ['p1', 'p2'], role: 'member', expiresAt: '2026-12-02T00:00:00Z' },
          { sha256: tokenHash('ops-token'), user: 'ops', projects: ['*'], role: 'admin' },
        ],
      },
      () => now,
    );
    expect(await identity.authenticate(token)).toEqual({ user: 'alice', projects: ['p1', 'p2'], role: 'member', via: 'static', expiresAt: Date.parse('2026-12-02T00:00:00Z') });
    expect(await identity.authenticate('ops-token')).toEqual({ user: 'ops', projects: '*', role: 'admin', via: 'static' });
    expect(await identity.authenticate(tokenHash(token))).toBeUndefined(); // the hash is not the token
    expect(await identity.authenticate(`${token}x`)).toBeUndefined();
    now = Date.parse('2026-12-02T00:00:00Z');
    expect(await identity.authenticate(token)).toBeUndefined();
  });

  it('refuses a configuration that holds a token instead of its hash', () => {
    expect(() => parseConfig({ sources: {}, identity: { backend: 'static', tokens: [{ sha256: 'my-secret-token', user: 'a', projects: ['p'], role: 'admin' }] } })).toThrow(
      /identity\.tokens\.0\.sha256: must be the SHA-256 of the token, 64 lowercase hex digits/,
    );
  });

  it('makes the first admin token once, keeping only its hash in a 0600 file', async () => {
    const cfg = parseConfig({ sources: {} }).identity;
    const file = path.join(dir, 'api-tokens.json');
    const token = ensureAdminToken(cfg, file)!;
    expect(token).toMatch(/^vmt_/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(JSON.parse(text)).toEqual({ tokens: [{ sha256: tokenHash(token), user: 'admin', projects: ['*'], role: 'admin' }] });
    // A second start finds it and makes nothing.
    expect(ensureAdminToken(cfg, file)).toBeUndefined();
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(await identityFromConfig(cfg, file).authenticate(token)).toMatchObject({ user: 'admin', projects: '*', role: 'admin' });
    // Configured tokens mean no token is made.
    expect(ensureAdminToken({ backend: 'static', tokens: [{ sha256: tokenHash('x'), user: 'a', projects: ['p'], role: 'reader' }] }, path.join(dir, 'other.json'))).toBeUndefined();
  });
});
