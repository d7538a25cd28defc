import { parseConfig } from '../../config/vmigrate-config';
import { checkTargetRequest, targetCatalog } from '../../targets/target-catalog';
import { TargetProviders, UnknownTargetError } from '../../targets/target-providers';
import pino from 'pino';

const source = { url: 'https://vc.example/sdk', username: 'u', passwordEnv: 'VC_PASSWORD' };
const openstack = {
  driver: 'openstack',
  authUrl: 'https://keystone.example:5000/v3',
  auth: { method: 'password', username: 'vmigrate', password: { file: 'secrets/os.password' } },
};

describe('configured targets', () => {
  test('several named targets, relative paths resolved, defaults filled in', () => {
    const cfg = parseConfig({ sources: { vc: source }, targets: { cloud: openstack, lab: { driver: 'local', dataDir: 'lab-data' } }, defaultTarget: 'cloud' }, '/etc/vmigrate');
    expect(cfg.defaultTarget).toBe('cloud');
    expect(cfg.targets.lab).toEqual({ driver: 'local', dataDir: '/etc/vmigrate/lab-data', sharedStorage: false });
    expect(cfg.targets.cloud).toMatchObject({
      interface: 'public',
      volumeAccess: { mode: 'cinder-attachment' },
      waitTimeoutSeconds: 600,
      auth: { userDomain: 'Default', projectDomain: 'Default', password: { file: '/etc/vmigrate/secrets/os.password' } },
    });
  });

  test('the older single local target is read as the target named "local"; no targets at all means a local one', () => {
    expect(parseConfig({ sources: {}, target: { driver: 'local', dataDir: 'old' } }, '/srv').targets).toEqual({ local: { driver: 'local', dataDir: '/srv/old', sharedStorage: false } });
    expect(parseConfig({ sources: {} }, '/srv')).toMatchObject({ defaultTarget: 'local', targets: { local: { driver: 'local', dataDir: '/srv/data' } } });
  });

  test.each([
    [{ targets: { cloud: { ...openstack, auth: { method: 'password', username: 'x', password: { file: 'a', env: 'B' } } } } }, /targets.cloud.auth.password: set exactly one of file or env/],
    [{ targets: { cloud: { ...openstack, authUrl: 'keystone' } } }, /targets.cloud.authUrl/],
    [{ targets: { cloud: { ...openstack, volumeAccess: { mode: 'attach-to-worker' } } } }, /targets.cloud.volumeAccess.workerServerId/],
    [{ targets: { cloud: { ...openstack, password: 'inline-secret' } } }, /Unrecognized key: "password"/],
    [{ targets: { cloud: openstack }, defaultTarget: 'elsewhere' }, /defaultTarget 'elsewhere' is not a configured target; configured: cloud/],
  ])('refuses an invalid configuration (%#)', (raw, message) => {
    expect(() => parseConfig({ sources: {}, ...raw })).toThrow(message);
  });

  test('the API checks the target by name (and a static flavor catalog) without credentials', () => {
    const catalog = targetCatalog(parseConfig({ sources: {}, targets: { cloud: openstack, local: { driver: 'local' } }, defaultTarget: 'cloud' }));
    expect(catalog.entries.map((e) => [e.name, e.kind])).toEqual([['cloud', 'openstack'], ['local', 'local']]);
    // The cloud's flavors are checked by the worker at preflight; the API cannot and does not ask.
    expect(checkTargetRequest(catalog, { flavor: 'anything' })).toEqual([]);
    expect(checkTargetRequest(catalog, { name: 'local', flavor: 'm9.huge' })).toEqual([
      { field: 'target.flavor', reason: "unknown flavor 'm9.huge'; available: m1.small, m1.medium, m1.large, m1.xlarge" },
    ]);
    expect(checkTargetRequest(catalog, { name: 'nope', flavor: 'm1.small' })).toEqual([{ field: 'target.name', reason: "unknown target 'nope'; configured: cloud, local" }]);
  });

  test('workers build providers on first use and name an unknown target', () => {
    const providers = new TargetProviders(parseConfig({ sources: {}, targets: { cloud: openstack, local: { driver: 'local' } }, defaultTarget: 'local' }, '/tmp'), pino({ level: 'silent' }));
    expect(providers.get().kind).toBe('local');
    expect(providers.get('cloud')).toMatchObject({ kind: 'openstack', name: 'cloud' });
    expect(providers.get('cloud')).toBe(providers.get('cloud'));
    expect(() => providers.get('gone')).toThrow(new UnknownTargetError("unknown target 'gone'; configured targets: cloud, local"));
  });

  test('local volumes are on the worker host unless the data directory is shared storage; cloud volumes never are', () => {
    const build = (sharedStorage?: boolean) =>
      new TargetProviders(parseConfig({ sources: {}, targets: { cloud: openstack, local: { driver: 'local', ...(sharedStorage === undefined ? {} : { sharedStorage }) } } }, '/tmp'), pino({ level: 'silent' }));
    expect(build().get('local').capabilities.volumesOnWorkerHost).toBe(true);
    expect(build(false).get('local').capabilities.volumesOnWorkerHost).toBe(true);
    expect(build(true).get('local').capabilities.volumesOnWorkerHost).toBe(false);
    expect(build().get('cloud').capabilities.volumesOnWorkerHost).toBe(false);
    expect(() => parseConfig({ sources: {}, targets: { local: { driver: 'local', sharedStorage: 'yes' } } })).toThrow(/targets\.local\.sharedStorage/);
  });

  test('a libvirt target: its hosts and their migration addresses; duplicate hosts, an unknown landing host and non-libvirt URIs refused', () => {
    const kvm = { driver: 'libvirt', hosts: [{ name: 'kvm1', uri: 'qemu+ssh://root@kvm1/system', migrationAddress: '10.0.0.1' }, { name: 'kvm2', uri: 'qemu+tls://kvm2/system' }] };
    const cfg = parseConfig({ sources: {}, targets: { local: { driver: 'local' }, kvm } }, '/srv');
    expect(cfg.targets.kvm).toEqual({ ...kvm, storagePool: 'default', sharedStorage: false, networks: {}, virtType: 'kvm' });
    expect(targetCatalog(cfg).entries).toContainEqual({ name: 'kvm', kind: 'libvirt' });
    const twice = { ...kvm, hosts: [kvm.hosts[0], { ...kvm.hosts[1], name: 'kvm1' }] };
    expect(() => parseConfig({ sources: {}, targets: { kvm: twice }, defaultTarget: 'kvm' })).toThrow(/host kvm1 is listed twice/);
    expect(() => parseConfig({ sources: {}, targets: { kvm: { ...kvm, hosts: [{ name: 'x', uri: 'http://kvm1/' }] } }, defaultTarget: 'kvm' })).toThrow(/must be a qemu libvirt URI/);
    expect(() => parseConfig({ sources: {}, targets: { kvm: { ...kvm, landingHost: 'kvm3' } }, defaultTarget: 'kvm' })).toThrow(/landingHost kvm3 is not one of the hosts \(kvm1, kvm2\)/);
    // Its volumes are files of the landing host's pool: the worker there does the volume work, unless the pool is shared.
    const provider = new TargetProviders(cfg, pino({ level: 'silent' })).get('kvm');
    expect(provider).toMatchObject({ kind: 'libvirt', landingHost: 'kvm1', capabilities: { volumesOnWorkerHost: true, ports: false } });
    const shared = parseConfig({ sources: {}, targets: { kvm: { ...kvm, sharedStorage: true, landingHost: 'kvm2' } }, defaultTarget: 'kvm' }, '/srv');
    expect(new TargetProviders(shared, pino({ level: 'silent' })).get('kvm')).toMatchObject({ landingHost: 'kvm2', capabilities: { volumesOnWorkerHost: false } });
  });
});
