/**
 * Every route × every kind of caller, against the real API, dev server, simulator and worker: no token → 401, a role
 * too low → 403, another project's migration → 404 exactly as for one that does not exist, otherwise 2xx (or the
 * 409 the migration's state calls for). The OpenAPI document is checked against the same table: every documented
 * operation is exercised here, and the role it declares is the least role that got through.
 */
import type { AxiosInstance } from 'axios';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const vm = (name: string) => ({ name, guestId: 'debian11_64Guest', firmware: 'bios' as const, numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff' as const, disks: [{ capacityMiB: 8 }], nics: [] });
const submission = (name: string) => ({
  sourceId: 'sim',
  vm: { name },
  target: { project: 'p-acc', flavor: 'm1.small', volumeType: 'standard', networks: [] },
  guest: { convert: 'skip' },
});

type Caller = 'none' | 'outsider' | 'reader' | 'member' | 'admin';
const CALLERS: Caller[] = ['none', 'outsider', 'reader', 'member', 'admin'];

describe('who may call what: every route × no token, another project, reader, member, admin', () => {
  let env: MigrationEnv;
  let api: TestApi;
  let done: string;
  /** Agent templates of p-acc: one every caller reads, one the member deletes. */
  let template: string;
  let doomed: string;
  let key: string;
  /** A live migration and a host drain of a cloud without admin credentials: both refused at their first step. */
  let live: string;
  let drain: string;
  const templateBody = () => ({ name: 'servers', target: { project: 'p-acc', volumeType: 'standard', networks: [{ sourceNetwork: '*', targetNetwork: 'tenant-net' }] } });
  const client = (c: Caller): AxiosInstance => (c === 'none' ? api.anonymous : api.as(c === 'admin' ? 'boss' : c));

  beforeAll(async () => {
    env = await createMigrationEnv('api-access', { vms: [vm('acc01'), vm('acc02'), vm('acc03')] }, {
      extraSources: { 'acc-only': { projects: ['p-acc'] } },
      agentsReachAt: '127.0.0.1',
      // Never reached: without hostOperations credentials a host operation stops before it asks the cloud anything.
      targets: { cloud: { driver: 'openstack', authUrl: 'http://127.0.0.1:9/v3', auth: { method: 'password', username: 'nobody', password: { env: 'VMIGRATE_TEST_UNUSED_PASSWORD' } } } },
    });
    await env.startWorker();
    api = await startApi(env, {
      users: [
        { name: 'outsider', projects: ['p-other'], role: 'member' },
        { name: 'reader', projects: ['p-acc'], role: 'reader' },
        { name: 'member', projects: ['p-acc'], role: 'member' },
        { name: 'boss', projects: ['p-acc'], role: 'admin' },
      ],
    });
    const first = await api.as('member').post('/migrations', submission('acc01'));
    expect(first.status).toBe(202);
    done = first.data.id;
    const tpl = (body: unknown) => api.http.post('/agent-templates', body).then((r) => r.data.id as string);
    template = await tpl(templateBody());
    doomed = await tpl(templateBody());
    key = String((await api.http.get(`/agent-templates/${template}/iso`, { responseType: 'arraybuffer' })).headers['x-enrollment-key-id']);
    expect((await waitForMigration(api.http, done, { timeoutMs: 120_000 })).status).toBe('COMPLETED');
    live = (await api.as('boss').post('/live-migrations', { target: 'cloud', server: 'srv-1' })).data.id;
    drain = (await api.as('boss').post('/host-drains', { target: 'cloud', host: 'cmp-1', reason: 'firmware update' })).data.id;
    for (const path of [`/live-migrations/${live}`, `/host-drains/${drain}`]) {
      const deadline = Date.now() + 60_000;
      while ((await api.as('boss').get(path)).data.status === 'RUNNING' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
    }
  }, 240_000);

  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  interface Case {
    method: 'get' | 'post' | 'delete';
    path: string;
    /** The OpenAPI path it exercises. */
    operation: string;
    body?: () => unknown;
    expect: Record<Caller, number>;
    check?: (caller: Caller, data: any) => void;
  }

  const cases = (): Case[] => [
    { method: 'get', path: '/openapi.json', operation: '/openapi.json', expect: { none: 200, outsider: 200, reader: 200, member: 200, admin: 200 } },
    { method: 'get', path: '/health', operation: '/health', expect: { none: 200, outsider: 200, reader: 200, member: 200, admin: 200 } },
    {
      method: 'get',
      path: '/whoami',
      operation: '/whoami',
      expect: { none: 401, outsider: 200, reader: 200, member: 200, admin: 200 },
      check: (c, data) => c !== 'none' && expect(data.role).toBe(c === 'outsider' ? 'member' : c),
    },
    {
      method: 'get',
      path: '/migrations',
      operation: '/migrations',
      expect: { none: 401, outsider: 200, reader: 200, member: 200, admin: 200 },
      check: (c, data) => {
        if (c === 'none') return;
        const ids = data.migrations.map((m: { id: string }) => m.id);
        if (c === 'outsider') expect(ids).not.toContain(done);
        else expect(ids).toContain(done);
      },
    },
    {
      method: 'post',
      path: '/migrations',
      operation: '/migrations',
      // member and admin each submit a VM of their own (acc02, acc03); the others are refused before anything starts.
      body: () => submission('acc02'),
      expect: { none: 401, outsider: 404, reader: 403, member: 202, admin: 202 },
    },
    { method: 'get', path: `/migrations/{done}`, operation: '/migrations/{id}', expect: { none: 401, outsider: 404, reader: 200, member: 200, admin: 200 } },
    { method: 'get', path: `/migrations/{done}/events`, operation: '/migrations/{id}/events', expect: { none: 401, outsider: 404, reader: 200, member: 200, admin: 200 } },
    { method: 'post', path: `/migrations/{done}/cutover`, operation: '/migrations/{id}/cutover', body: () => ({}), expect: { none: 401, outsider: 404, reader: 403, member: 409, admin: 409 } },
    { method: 'post', path: `/migrations/{done}/start`, operation: '/migrations/{id}/start', body: () => ({}), expect: { none: 401, outsider: 404, reader: 403, member: 409, admin: 409 } },
    { method: 'post', path: `/migrations/{done}/cancel`, operation: '/migrations/{id}/cancel', body: () => ({}), expect: { none: 401, outsider: 404, reader: 403, member: 409, admin: 409 } },
    { method: 'post', path: `/migrations/{done}/retry`, operation: '/migrations/{id}/retry', body: () => ({}), expect: { none: 401, outsider: 404, reader: 403, member: 409, admin: 409 } },
    {
      method: 'get',
      path: '/sources',
      operation: '/sources',
      expect: { none: 401, outsider: 200, reader: 200, member: 200, admin: 200 },
      check: (c, data) => c !== 'none' && expect(data.sources.map((s: { id: string }) => s.id).sort()).toEqual(c === 'outsider' ? ['sim'] : ['acc-only', 'sim']),
    },
    { method: 'get', path: '/sources/acc-only/vms?name=acc01', operation: '/sources/{id}/vms', expect: { none: 401, outsider: 404, reader: 200, member: 200, admin: 200 } },
    { method: 'post', path: '/preflight', operation: '/preflight', body: () => submission('acc02'), expect: { none: 401, outsider: 404, reader: 200, member: 200, admin: 200 } },
    {
      method: 'get',
      path: '/targets',
      operation: '/targets',
      expect: { none: 401, outsider: 200, reader: 200, member: 200, admin: 200 },
      check: (c, data) => c !== 'none' && expect(data.targets).toContainEqual({ name: 'cloud', kind: 'openstack', default: false }),
    },
    {
      method: 'get',
      path: `/targets/${env.config.defaultTarget}/choices?project=p-acc`,
      operation: '/targets/{name}/choices',
      expect: { none: 401, outsider: 404, reader: 200, member: 200, admin: 200 },
      // The local target: its flavors; any volume type or network name.
      check: (c, data) => c !== 'none' && c !== 'outsider' && expect([data.flavors.map((f: { name: string }) => f.name), data.volumeTypes, data.networks]).toEqual([expect.arrayContaining(['m1.small']), undefined, undefined]),
    },
    { method: 'get', path: '/metrics', operation: '/metrics', expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 200 } },
    { method: 'get', path: '/admission', operation: '/admission', expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 200 } },
    { method: 'post', path: '/agent-templates', operation: '/agent-templates', body: templateBody, expect: { none: 401, outsider: 404, reader: 403, member: 201, admin: 201 } },
    {
      method: 'get',
      path: '/agent-templates',
      operation: '/agent-templates',
      expect: { none: 401, outsider: 200, reader: 200, member: 200, admin: 200 },
      check: (c, data) => c !== 'none' && expect(data.templates.some((t: { id: string }) => t.id === template)).toBe(c !== 'outsider'),
    },
    { method: 'get', path: '/agent-templates/{template}', operation: '/agent-templates/{id}', expect: { none: 401, outsider: 404, reader: 200, member: 200, admin: 200 } },
    { method: 'get', path: '/agent-templates/{template}/iso', operation: '/agent-templates/{id}/iso', expect: { none: 401, outsider: 404, reader: 403, member: 200, admin: 200 } },
    // Revoking a revoked key again is the same answer.
    { method: 'delete', path: '/agent-templates/{template}/enrollment-keys/{key}', operation: '/agent-templates/{id}/enrollment-keys/{keyId}', expect: { none: 401, outsider: 404, reader: 403, member: 200, admin: 200 } },
    // Host operations: the admin's alone, not scoped to projects.
    { method: 'post', path: '/live-migrations', operation: '/live-migrations', body: () => ({ target: 'cloud', server: 'srv-2' }), expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 202 } },
    {
      method: 'get',
      path: '/live-migrations',
      operation: '/live-migrations',
      expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 200 },
      check: (c, data) => c === 'admin' && expect(data.liveMigrations.map((m: { id: string }) => m.id)).toContain(live),
    },
    {
      method: 'get',
      path: '/live-migrations/{live}',
      operation: '/live-migrations/{id}',
      expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 200 },
      check: (c, data) => c === 'admin' && expect(data).toMatchObject({ id: live, kind: 'live', stage: 'Failed', status: 'FAILED', serverId: 'srv-1', requestedBy: 'boss', error: expect.stringMatching(/target cloud has no hostOperations credentials/) }),
    },
    { method: 'post', path: '/live-migrations/{live}/cancel', operation: '/live-migrations/{id}/cancel', body: () => ({}), expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 409 } },
    { method: 'post', path: '/host-drains', operation: '/host-drains', body: () => ({ target: 'cloud', host: 'cmp-2', reason: 'new disks' }), expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 202 } },
    {
      method: 'get',
      path: '/host-drains',
      operation: '/host-drains',
      expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 200 },
      check: (c, data) => c === 'admin' && expect(data.hostDrains.map((d: { id: string }) => d.id)).toContain(drain),
    },
    {
      method: 'get',
      path: '/host-drains/{drain}',
      operation: '/host-drains/{id}',
      expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 200 },
      check: (c, data) => c === 'admin' && expect(data).toMatchObject({ id: drain, kind: 'drain', host: 'cmp-1', reason: 'firmware update', maxInFlight: 1, stage: 'Failed', status: 'FAILED', error: expect.stringMatching(/hostOperations/) }),
    },
    { method: 'post', path: '/host-drains/{drain}/cancel', operation: '/host-drains/{id}/cancel', body: () => ({}), expect: { none: 401, outsider: 403, reader: 403, member: 403, admin: 409 } },
    // The member deletes it; for the admin after that, it no longer exists.
    { method: 'delete', path: '/agent-templates/{doomed}', operation: '/agent-templates/{id}', expect: { none: 401, outsider: 404, reader: 403, member: 204, admin: 404 } },
  ];

  it('answers each caller as the table says, with problem+json for every refusal', async () => {
    const seen: string[] = [];
    for (const c of cases()) {
      for (const caller of CALLERS) {
        const path = c.path.replace('{done}', done).replace('{template}', template).replace('{doomed}', doomed).replace('{key}', key).replace('{live}', live).replace('{drain}', drain);
        let data = c.body?.();
        if (c.method === 'post' && c.path === '/migrations' && caller === 'admin') data = submission('acc03');
        const res = c.method === 'get' ? await client(caller).get(path, { responseType: path.endsWith('/iso') ? 'arraybuffer' : 'json' }) : c.method === 'delete' ? await client(caller).delete(path) : await client(caller).post(path, data);
        if (res.data instanceof ArrayBuffer || Buffer.isBuffer(res.data)) {
          const raw = Buffer.from(res.data as ArrayBuffer);
          res.data = res.status >= 400 ? JSON.parse(raw.toString('utf8')) : { bytes: raw.length };
        }
        seen.push(`${c.method.toUpperCase()} ${c.path} as ${caller}: ${res.status}`);
        expect(`${c.method.toUpperCase()} ${c.path} as ${caller}: ${res.status}`).toBe(`${c.method.toUpperCase()} ${c.path} as ${caller}: ${c.expect[caller]}`);
        if (res.status >= 400) {
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.data).toMatchObject({ status: res.status, type: expect.stringMatching(/^urn:vmigrate:problem:/), title: expect.any(String) });
        }
        if (res.status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
        c.check?.(caller, res.data);
      }
    }
    expect(seen).toHaveLength(cases().length * CALLERS.length);
  }, 300_000);

  it('pages through the list and filters it', async () => {
    const all = (await api.as('reader').get('/migrations')).data.migrations as Array<{ id: string; sourceVm: string }>;
    expect(all).toHaveLength(3); // acc01, and acc02 and acc03 from the table
    for (const m of all) await waitForMigration(api.http, m.id, { timeoutMs: 120_000 });
    const seen: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await api.as('reader').get('/migrations', { params: { limit: 1, ...(pageToken ? { pageToken } : {}) } });
      expect(page.status).toBe(200);
      expect(page.data.migrations.length).toBeLessThanOrEqual(1);
      seen.push(...page.data.migrations.map((m: { id: string }) => m.id));
      pageToken = page.data.nextPageToken;
    } while (pageToken && seen.length < 10);
    expect(seen.sort()).toEqual(all.map((m) => m.id).sort());
    const ids = async (params: Record<string, unknown>) => ((await api.as('reader').get('/migrations', { params })).data.migrations as Array<{ id: string }>).map((m) => m.id).sort();
    expect(await ids({ state: 'Completed' })).toEqual(all.map((m) => m.id).sort());
    expect(await ids({ kind: 'warm' })).toEqual([]);
    expect(await ids({ status: 'running' })).toEqual([]);
    const acc01 = all.find((m) => m.id === done)!;
    expect(await ids({ sourceId: 'sim', vm: acc01.sourceVm.split('/')[1] })).toEqual([done]);
    for (const bad of [{ limit: 0 }, { limit: 'ten' }, { state: 'Sleeping' }, { pageToken: 'not a token!' }, { pageToken: 'AAAA' }, { project: '../x' }, { surprise: 1 }]) {
      const res = await api.as('reader').get('/migrations', { params: bad });
      expect(`${JSON.stringify(bad)} → ${res.status}`).toBe(`${JSON.stringify(bad)} → 400`);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  }, 200_000);

  it("answers another project's migration exactly as one that does not exist", async () => {
    const hidden = await api.as('outsider').get(`/migrations/${done}`);
    const missing = await api.as('outsider').get('/migrations/mig-0000000-0000');
    expect(hidden.status).toBe(404);
    expect(hidden.data.detail).toBe(`no migration with id '${done}'`);
    expect(missing.data.detail).toBe("no migration with id 'mig-0000000-0000'");
    expect(Object.keys(hidden.data).sort()).toEqual(Object.keys(missing.data).sort());
    // Filtering by a project one does not belong to finds nothing rather than refusing (which would tell it exists).
    const filtered = await api.as('outsider').get('/migrations', { params: { project: 'p-acc' } });
    expect(filtered.status).toBe(200);
    expect(filtered.data.migrations).toEqual([]);
  });

  it('documents every route in OpenAPI 3.1 with the role the table found', async () => {
    const doc = (await api.anonymous.get('/openapi.json')).data;
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]) => ({ key: `${m} ${p}`, op })));
    const exercised = new Set(cases().map((c) => `${c.method} ${c.operation}`));
    expect(documented.map((d) => d.key).sort()).toEqual([...exercised].sort());
    for (const c of cases()) {
      const op = doc.paths[c.operation][c.method];
      const least = (['reader', 'member', 'admin'] as const).find((r) => c.expect[r] < 400 || c.expect[r] === 409);
      if (c.expect.none < 400) expect(op.security).toEqual([]);
      else expect(op['x-required-role']).toBe(least);
      expect(op.responses['400'].content['application/problem+json']).toBeDefined();
    }
    // The submission body schema is the validator's: its required fields are documented.
    const submit = doc.paths['/migrations'].post.requestBody.content['application/json'].schema;
    expect(submit.required).toEqual(expect.arrayContaining(['sourceId', 'target']));
    expect(submit.properties.target.properties.project.pattern).toBeDefined();
  });

  it('answers unknown routes with 404 and wrong methods with 405 naming the allowed ones', async () => {
    const unknown = await api.http.get('/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    const wrong = await api.http.delete(`/migrations/${done}`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, HEAD');
    expect(wrong.data.detail).toMatch(/DELETE is not allowed here/);
  });
});
