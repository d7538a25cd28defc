/**
 * Nova's live migration against the lab's two fake-driver computes (real Nova API, conductor, scheduler and
 * placement; the fake driver moves no bytes): the checks before it, a live migration that completes on the other
 * host, and refusals — a disabled destination, said before Nova is asked and by Nova itself when asked anyway
 * ("No valid host was found", typed, with its resolution), a destination whose memory is all reserved (the checks say
 * what it lacks, Nova has no valid host), and the server's own host — where the server stays ACTIVE.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../config/vmigrate-config';
import { NoValidHostError, liveMigrationFailure } from '../../live/live-migration-errors';
import { checkLivePrerequisites, type ComputeHostFacts } from '../../live/live-prerequisites';
import { KeystoneSession } from '../../targets/openstack/keystone-session';
import { ENDED_MIGRATION_STATUSES, NovaLiveMigrations, type LiveMigrationRecord } from '../../targets/openstack/nova-live-migrations';
import { OpenStackApi } from '../../targets/openstack/openstack-api';
import { freeCapacity } from '../../targets/openstack/placement-capacity';
import type { OpenStackTargetConfig } from '../../targets/target-config';
import { WorkflowFailedError } from '@temporalio/client';
import { hostDrain } from '../../workflows/host-drain';
import { hostDrainView } from '../../api/host-operation-view';
import { readWorkflowRecord } from '../../api/workflow-history';
import { liveMigration } from '../../workflows/live-migration';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { recordRunHistories } from '../harness/record-histories';
import { createLabProject, type LabProject } from '../harness/openstack-lab';
import { until } from '../harness/until';


describe('Nova live migration between the lab fake computes', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-live-'));
  let p: LabProject;
  let nova: NovaLiveMigrations;
  let placement: OpenStackApi;
  let member: OpenStackApi;
  let cinder: OpenStackApi;
  let env: MigrationEnv;
  const created: { servers: string[]; volumes: string[] } = { servers: [], volumes: [] };

  beforeAll(async () => {
    p = await createLabProject('live', dir);
    const adminPassword = path.join(dir, 'admin.password');
    writeFileSync(adminPassword, p.lab.admin.password, { mode: 0o600 });
    const config = (username: string, passwordFile: string) =>
      parseConfig({ sources: {}, targets: { lab: { driver: 'openstack', authUrl: p.lab.authUrl, region: p.lab.region, auth: { method: 'password', username, password: { file: passwordFile } } } } }, dir)
        .targets.lab as OpenStackTargetConfig;
    const adminSession = new KeystoneSession(config(p.lab.admin.username, adminPassword));
    nova = new NovaLiveMigrations(new OpenStackApi(adminSession, p.lab.admin.projectName, 'compute'));
    placement = new OpenStackApi(adminSession, p.lab.admin.projectName, 'placement');
    const memberSession = new KeystoneSession(config(p.username, p.passwordFile));
    member = new OpenStackApi(memberSession, p.projectName, 'compute');
    cinder = new OpenStackApi(memberSession, p.projectName, 'volumev3');
    // A worker whose target has the cloud admin's credentials for host operations.
    env = await createMigrationEnv('os-live', { vms: [] }, {
      targets: { lab: p.targetConfig({ hostOperations: p.adminHostOperations() }) },
      defaultTarget: 'lab',
    });
    await env.startWorker();
  }, 600_000);

  afterAll(async () => {
    await env?.close();
    for (const id of created.servers) await member.call('DELETE', `/servers/${id}`, { accept: [404], what: 'deleting a test server' }).catch(() => undefined);
    for (const id of created.servers) await until('server gone', async () => ((await member.call('GET', `/servers/${id}`, { accept: [404], what: 'reading' })).status === 404 ? true : undefined)).catch(() => undefined);
    for (const id of created.volumes) await cinder.call('DELETE', `/volumes/${id}`, { accept: [404], what: 'deleting a test volume' }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A server in the fake zone booted from an empty volume, no NIC: ACTIVE on one of the two fake computes. */
  async function bootServer(name: string) {
    const vol = (await cinder.call('POST', '/volumes', { body: { volume: { size: 1, name: `${name}-root`, volume_type: p.lab.volumeType } }, what: 'creating a volume' })).body.volume;
    created.volumes.push(vol.id);
    await until('volume available', async () => ((await cinder.call('GET', `/volumes/${vol.id}`, { what: 'reading' })).body.volume.status === 'available' ? true : undefined));
    await cinder.call('POST', `/volumes/${vol.id}/action`, { body: { 'os-set_bootable': { bootable: true } }, what: 'marking it bootable' });
    const server = (
      await member.call('POST', '/servers', {
        body: {
          server: {
            name,
            flavorRef: '1',
            availability_zone: p.lab.zones.fake,
            networks: 'none',
            block_device_mapping_v2: [{ boot_index: 0, uuid: vol.id, source_type: 'volume', destination_type: 'volume', delete_on_termination: false }],
          },
        },
        microversion: 'compute 2.67',
        what: 'booting a server',
      })
    ).body.server;
    created.servers.push(server.id);
    return until('server ACTIVE', async () => {
      const s = await nova.server(server.id);
      if (s.status === 'ERROR') throw new Error(`server ${name} went to ERROR`);
      return s.status === 'ACTIVE' && !s.taskState ? s : undefined;
    });
  }

  async function hostFacts(): Promise<ComputeHostFacts[]> {
    const [services, hypervisors] = await Promise.all([nova.computeServices(), nova.hypervisors()]);
    return Promise.all(
      services.map(async (service) => {
        const hypervisor = hypervisors.find((h) => h.host === service.host);
        return { service, hypervisor, ...(hypervisor ? { free: await freeCapacity(placement, hypervisor.id) } : {}) };
      }),
    );
  }

  const ended = (serverId: string, after: number) =>
    until('the live migration ended', async () => {
      const m = (await nova.liveMigrations(serverId)).find((x) => x.id > after);
      return m && ENDED_MIGRATION_STATUSES.includes(m.status) ? m : undefined;
    });
  const lastMigrationId = async (serverId: string) => (await nova.liveMigrations(serverId))[0]?.id ?? 0;
  /** Nova asked to live-migrate to `host` past the checks: its migration record ends in error, and why it says. */
  const askedAnyway = async (serverId: string, host: string): Promise<string> => {
    const before = await lastMigrationId(serverId);
    const requestId = await nova.liveMigrate(serverId, { host, blockMigration: 'auto' });
    expect((await ended(serverId, before)).status).toBe('error');
    const why = await until('the instance action says why', () => nova.failureOf(serverId, requestId!));
    expect(why).toMatch(/No valid host was found/);
    return why;
  };

  it('checks first, then moves the server to the other fake compute: ACTIVE there, its migration completed', async () => {
    const server = await bootServer('live-a');
    const [fake1, fake2] = p.lab.computeHosts.fake;
    const other = server.host === fake1 ? fake2 : fake1;
    expect([fake1, fake2]).toContain(server.host);
    expect(server).toMatchObject({ bootFromVolume: true, flavor: { vcpus: 1, ramMB: 512 } });

    const facts = await hostFacts();
    const verdict = checkLivePrerequisites(server, facts, { blockMigration: 'auto' });
    // The libvirt compute is in another zone: only the other fake compute can take it.
    expect(verdict).toEqual({ ok: true, problems: [], candidates: [other], mode: 'live' });
    expect(checkLivePrerequisites(server, facts, { destination: server.host, blockMigration: 'auto' }).problems).toEqual([`server live-a runs on ${server.host} already`]);

    const before = await lastMigrationId(server.id);
    const requestId = await nova.liveMigrate(server.id, { blockMigration: 'auto' });
    expect(requestId).toMatch(/^req-/);
    const record: LiveMigrationRecord = await ended(server.id, before);
    expect(record).toMatchObject({ status: 'completed', sourceCompute: server.host, destCompute: other });
    expect(await nova.server(server.id)).toMatchObject({ status: 'ACTIVE', host: other });
    expect(await nova.failureOf(server.id, requestId!)).toBeUndefined();
    // What a retried start finds when an earlier attempt asked already: the request of that migration.
    expect(await nova.latestActionRequest(server.id, 'live-migration')).toBe(requestId);
  }, 300_000);

  it('a disabled destination: refused before Nova is asked, and by Nova when asked anyway (no valid host); the server stays ACTIVE where it was', async () => {
    const server = await bootServer('live-b');
    const [fake1, fake2] = p.lab.computeHosts.fake;
    const other = server.host === fake1 ? fake2 : fake1;
    const service = (await nova.computeServices()).find((s) => s.host === other)!;
    const disabled = await nova.setComputeService(service.id, { enabled: false, reason: 'vmigrate test: maintenance' });
    try {
      expect(disabled).toMatchObject({ host: other, enabled: false, disabledReason: 'vmigrate test: maintenance' });
      const facts = await hostFacts();
      expect(checkLivePrerequisites(server, facts, { destination: other, blockMigration: 'auto' }).problems).toEqual([`compute ${other} is disabled (vmigrate test: maintenance)`]);
      expect(checkLivePrerequisites(server, facts, { blockMigration: 'auto' }).problems).toEqual([
        expect.stringMatching(new RegExp(`^no other compute host can take server live-b: .*compute ${other} is disabled \\(vmigrate test: maintenance\\)`)),
      ]);

      const why = await askedAnyway(server.id, other);
      const err = liveMigrationFailure(why);
      expect(err).toBeInstanceOf(NoValidHostError);
      expect(err.message).toContain('check it with openstack hypervisor show <host>');
      expect(await nova.server(server.id)).toMatchObject({ status: 'ACTIVE', host: server.host });
    } finally {
      await nova.setComputeService(service.id, { enabled: true });
    }
    expect((await nova.computeServices()).find((s) => s.host === other)).toMatchObject({ enabled: true });
  }, 300_000);

  it('a destination without room: refused before Nova is asked with what it lacks, and by Nova when asked anyway (no valid host); the server stays ACTIVE where it was', async () => {
    const server = await bootServer('live-full');
    const [fake1, fake2] = p.lab.computeHosts.fake;
    const other = server.host === fake1 ? fake2 : fake1;
    const rp = (await nova.hypervisors()).find((h) => h.host === other)!.id;
    // The other compute's memory all reserved, as an operator holds a host back: Placement then has none to allocate.
    const inventory = async () => (await placement.call('GET', `/resource_providers/${rp}/inventories/MEMORY_MB`, { what: 'reading the memory inventory' })).body;
    const setReserved = async (reserved: number) => {
      const inv = await inventory();
      await placement.call('PUT', `/resource_providers/${rp}/inventories/MEMORY_MB`, {
        body: { resource_provider_generation: inv.resource_provider_generation, total: inv.total, reserved, min_unit: inv.min_unit, max_unit: inv.max_unit, step_size: inv.step_size, allocation_ratio: inv.allocation_ratio },
        microversion: 'placement 1.26',
        what: 'reserving the memory',
      });
    };
    const original = await inventory();
    await setReserved(original.total);
    try {
      const facts = await hostFacts();
      expect(checkLivePrerequisites(server, facts, { destination: other, blockMigration: 'auto' }).problems).toEqual([
        expect.stringMatching(new RegExp(`^compute ${other} lacks capacity: -?\\d+ MiB of memory free, 512 needed$`)),
      ]);
      expect(checkLivePrerequisites(server, facts, { blockMigration: 'auto' }).problems).toEqual([
        expect.stringMatching(new RegExp(`^no other compute host can take server live-full: .*compute ${other} lacks capacity: -?\\d+ MiB of memory free, 512 needed`)),
      ]);

      expect(liveMigrationFailure(await askedAnyway(server.id, other))).toBeInstanceOf(NoValidHostError);
      expect(await nova.server(server.id)).toMatchObject({ status: 'ACTIVE', host: server.host });
    } finally {
      await setReserved(original.reserved);
    }
    expect((await inventory()).reserved).toBe(original.reserved);
  }, 300_000);

  it('the liveMigration workflow: checks, migrates, verifies (stages in order); refused at its checks with the reason', async () => {
    const server = await bootServer('live-c');
    const [fake1, fake2] = p.lab.computeHosts.fake;
    const other = server.host === fake1 ? fake2 : fake1;
    const result = await env.client.workflow.execute(liveMigration, {
      taskQueue: env.taskQueue,
      workflowId: `live-${server.id}`,
      args: [{ operationId: `live-${server.id}`, target: { name: 'lab' }, serverId: server.id, blockMigration: 'auto', requestedBy: 'admin' }],
    });
    expect(result).toMatchObject({ stage: 'Completed', serverName: 'live-c', source: server.host, destination: other, candidates: [other], mode: 'live', record: { status: 'completed', destCompute: other } });
    expect(result.stages.map((s) => s.stage)).toEqual(['Checks', 'Migrating', 'Verify', 'Completed']);
    // Re-record the replay test's history (VMIGRATE_RECORD_HISTORY_DIR=test/replay/histories).
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, `live-${server.id}`, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'live-migration-v1'));
    expect(await nova.server(server.id)).toMatchObject({ status: 'ACTIVE', host: other });

    // Back to where it came from, named, while that host is disabled: refused by the checks, nothing started.
    const service = (await nova.computeServices()).find((s) => s.host === server.host)!;
    await nova.setComputeService(service.id, { enabled: false, reason: 'vmigrate test: drain' });
    try {
      const before = await lastMigrationId(server.id);
      const err = await env.client.workflow
        .execute(liveMigration, {
          taskQueue: env.taskQueue,
          workflowId: `live-back-${server.id}`,
          args: [{ operationId: `live-back-${server.id}`, target: { name: 'lab' }, serverId: server.id, destination: server.host, blockMigration: 'auto', requestedBy: 'admin' }],
        })
        .catch((e) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(String((err as WorkflowFailedError).cause?.message)).toBe(
        `migration live-back-${server.id} failed in stage Checks: server live-c cannot be live-migrated: compute ${server.host} is disabled (vmigrate test: drain). Fix what the checks name and migrate again`,
      );
      expect(await lastMigrationId(server.id)).toBe(before);
    } finally {
      await nova.setComputeService(service.id, { enabled: true });
    }
  }, 300_000);

  it('hostDrain: the host disabled with its reason, three servers moved off one at a time (a stopped one by cold migration), then enabled again', async () => {
    const [fake1, fake2] = p.lab.computeHosts.fake;
    // All three land on fake1: fake2 is disabled while they boot.
    const other = (await nova.computeServices()).find((s) => s.host === fake2)!;
    await nova.setComputeService(other.id, { enabled: false, reason: 'vmigrate test: placing on fake1' });
    const ids: string[] = [];
    try {
      for (const name of ['drain-1', 'drain-2', 'drain-3']) ids.push((await bootServer(name)).id);
    } finally {
      await nova.setComputeService(other.id, { enabled: true });
    }
    for (const id of ids) expect((await nova.server(id)).host).toBe(fake1);
    // drain-3 is stopped: live migration cannot move it, a cold migration does.
    await member.call('POST', `/servers/${ids[2]}/action`, { body: { 'os-stop': null }, what: 'stopping drain-3' });
    await until('drain-3 SHUTOFF', async () => {
      const s = await nova.server(ids[2]!);
      return s.status === 'SHUTOFF' && !s.taskState ? true : undefined;
    });
    // The drain moves every project's servers on the host: one an earlier test left broken there could not move.
    for (const s of await nova.serversOnHost(fake1)) {
      if (!ids.includes(s.id) && s.status === 'ERROR') await nova.api.call('DELETE', `/servers/${s.id}`, { accept: [404], what: `deleting leftover server ${s.name}` });
    }
    await until('no broken leftovers on fake1', async () => ((await nova.serversOnHost(fake1)).every((s) => s.status !== 'ERROR') ? true : undefined));

    const drainId = `drain-${fake1}-${Date.now()}`;
    const result = await env.client.workflow.execute(hostDrain, {
      taskQueue: env.taskQueue,
      workflowId: drainId,
      args: [{ operationId: drainId, target: { name: 'lab' }, host: fake1, reason: 'vmigrate test: firmware update', maxInFlight: 1, reenable: true, requestedBy: 'admin' }],
    });
    const notMoved = result.servers.filter((s) => s.error).map((s) => `${s.name}: ${s.error}`);
    expect({ stage: result.stage, host: result.host, notMoved, reenabled: result.reenabled }).toEqual({ stage: 'Completed', host: fake1, notMoved: [], reenabled: true });
    expect(result.notMoved).toBe(0);
    const ours = result.servers.filter((s) => ids.includes(s.serverId));
    expect(ours.map((s) => [s.name, s.how, s.to, s.error])).toEqual(
      expect.arrayContaining([
        ['drain-1', 'live', fake2, undefined],
        ['drain-2', 'live', fake2, undefined],
        ['drain-3', 'cold', fake2, undefined],
      ]),
    );
    expect(result.moved).toBe(result.servers.length);
    // One in flight: each live migration started after the one before it ended.
    const spans = result.servers.map((s) => [Date.parse(s.startedAt!), Date.parse(s.endedAt!)]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    expect(await nova.serversOnHost(fake1)).toEqual([]);
    for (const id of ids.slice(0, 2)) expect(await nova.server(id)).toMatchObject({ status: 'ACTIVE', host: fake2 });
    // Moved and still stopped, its cold migration confirmed.
    expect(await nova.server(ids[2]!)).toMatchObject({ status: 'SHUTOFF', host: fake2 });
    expect((await nova.coldMigrations(ids[2]!))[0]).toMatchObject({ status: 'confirmed', sourceCompute: fake1, destCompute: fake2 });
    expect((await nova.computeServices()).find((s) => s.host === fake1)).toMatchObject({ enabled: true });
    // What the API shows of it, from its history: each move started after the one before ended, the stopped one cold.
    const view = hostDrainView(drainId, await readWorkflowRecord(env.client, drainId));
    const moves = result.servers.map(() => ['server.move_started', 'server.moved']).flat();
    expect(view.events.map((e) => e.name)).toEqual(['drain.requested', 'host.disabled', 'servers.listed', ...moves, 'host.enabled', 'drain.completed']);
    expect(view.events.filter((e) => e.name === 'server.moved').map((e) => [e.data?.how, e.data?.to])).toEqual(
      expect.arrayContaining([['live', fake2], ['cold', fake2]]),
    );
    expect(view.events.find((e) => e.name === 'server.moved' && e.data?.how === 'cold')?.data?.serverId).toBe(ids[2]);
    if (process.env.VMIGRATE_RECORD_HISTORY_DIR) await recordRunHistories(env.client, drainId, path.join(process.env.VMIGRATE_RECORD_HISTORY_DIR, 'host-drain-v2'));
  }, 600_000);
});
