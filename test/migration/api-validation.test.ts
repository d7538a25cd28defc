import { startApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';

const valid = {
  sourceId: 'sim',
  vm: { name: 'web01' },
  target: { project: 'proj1', flavor: 'm1.small', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'net1' }] },
};

describe('API input validation', () => {
  let env: MigrationEnv;
  let api: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    env = await createMigrationEnv('api-validation', { vms: [] });
    api = await startApi(env);
  });
  afterAll(async () => {
    await api?.close();
    await env?.close();
  });

  const cases: Array<[string, unknown, Array<{ field: string; reason: RegExp }>]> = [
    ['missing target', { sourceId: 'sim', vm: { name: 'x' } }, [{ field: 'target', reason: /expected object/i }]],
    ['no VM selector', { ...valid, vm: {} }, [{ field: 'vm', reason: /VM name or moref/ }]],
    ['bad moref', { ...valid, vm: { moref: 'web01' } }, [{ field: 'vm.moref', reason: /vm-123/ }]],
    ['path-like project', { ...valid, target: { ...valid.target, project: '../etc' } }, [{ field: 'target.project', reason: /letters, digits/ }]],
    [
      'bad MAC',
      { ...valid, target: { ...valid.target, networks: [{ sourceMac: 'zz:00', targetNetwork: 'n' }] } },
      [{ field: 'target.networks.0.sourceMac', reason: /MAC address/ }],
    ],
    [
      'mapping with both MAC and network',
      { ...valid, target: { ...valid.target, networks: [{ sourceMac: '00:50:56:aa:bb:cc', sourceNetwork: 'VM Network', targetNetwork: 'n' }] } },
      [{ field: 'target.networks.0.sourceMac', reason: /exactly one of sourceMac or sourceNetwork/ }],
    ],
    ['unknown field', { ...valid, password: 'hunter2' }, [{ field: '(body)', reason: /unrecognized key/i }]],
    ['bad disk bus', { ...valid, target: { ...valid.target, diskBus: 'nvme' } }, [{ field: 'target.diskBus', reason: /virtio/ }]],
  ];

  it.each(cases)('%s → 400 naming the field and the reason', async (_name, body, expected) => {
    const res = await api.http.post('/migrations', body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.data).toMatchObject({ type: 'urn:vmigrate:problem:invalid-request', title: 'The request is not valid', status: 400 });
    for (const e of expected) {
      expect(res.data.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: e.field, reason: expect.stringMatching(e.reason) })]));
    }
  });

  it('rejects malformed JSON with 400', async () => {
    const res = await api.http.post('/migrations', '{"sourceId": ', { headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.data.errors[0].reason).toMatch(/not valid JSON/);
    expect(res.data.detail).toMatch(/not valid JSON/);
  });

  it('answers an unknown source with 404, as for one the caller may not use', async () => {
    const res = await api.http.post('/migrations', { ...valid, sourceId: 'nope' });
    expect(res.status).toBe(404);
    expect(res.data).toMatchObject({ type: 'urn:vmigrate:problem:not-found', detail: "no source 'nope'" });
  });

  it('rejects an unknown flavor with 422 listing the available ones', async () => {
    const res = await api.http.post('/migrations', { ...valid, target: { ...valid.target, flavor: 'huge' } });
    expect(res.status).toBe(422);
    expect(res.data.errors[0].field).toBe('target.flavor');
    expect(res.data.errors[0].reason).toMatch(/unknown flavor 'huge'; available: .*m1\.small/);
  });

  it('answers 404 for a migration that does not exist', async () => {
    const res = await api.http.get('/migrations/mig-does-not-exist');
    expect(res.status).toBe(404);
    expect(res.data).toMatchObject({ status: 404, detail: "no migration with id 'mig-does-not-exist'" });
    expect((await api.http.get('/migrations/mig-does-not-exist/events')).status).toBe(404);
  });

  it('started nothing for any rejected request', async () => {
    const res = await api.http.get('/migrations');
    expect(res.status).toBe(200);
    expect(res.data.migrations).toEqual([]);
  });
});
