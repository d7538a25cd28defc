import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { OpenStackLab } from '../../tools/openstack-lab/launch';
import { call, issueToken } from '../../tools/openstack-lab/rest';

/**
 * One real OpenStack lab (tools/openstack-lab) for the whole jest run, like the Temporal dev server: globalSetup
 * starts it in the background when the run includes OpenStack tests, and those tests wait for it here. Every test
 * makes its own project and user, so tests never see each other's volumes, ports or servers.
 */

/** What tests get of the lab (the lab object itself lives in globalSetup's context). */
export interface LabInfo {
  authUrl: string;
  region: string;
  admin: OpenStackLab['admin'];
  zones: OpenStackLab['zones'];
  volumeType: string;
  shareExportDir: string;
  networkId: string;
  publicNetworkId: string;
  computeHosts: OpenStackLab['computeHosts'];
  libvirtUri?: string;
  libvirtHosts: OpenStackLab['libvirtHosts'];
  /** Where the lab's services write their logs (`<service>.log`). */
  logDir: string;
  /** The OS_* variables `npm run lab:openstack` prints. */
  env: Record<string, string>;
}

const STATE_ENV = 'VMIGRATE_TEST_OPENSTACK_STATE';
const LAB_START_TIMEOUT_MS = 8 * 60_000;

/** globalSetup side: whether this run selects any OpenStack test (no pattern: the whole suite does). */
export function runSelectsOpenStack(patterns: string[]): boolean {
  return patterns.length === 0 || patterns.some((p) => /openstack/i.test(p));
}

/**
 * globalSetup side: start the lab without waiting; its info (or its failure) lands in a file the tests read.
 * VMIGRATE_TEST_OPENSTACK_LAB_DIR keeps the lab's state and logs there, for a look after a failure.
 */
export function startLabInBackground(): { stop(): Promise<void> } {
  const stateFile = path.join(os.tmpdir(), `vmigrate-test-openstack-${process.pid}.json`);
  process.env[STATE_ENV] = stateFile;
  const publish = (value: unknown) => {
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(value));
    renameSync(`${stateFile}.tmp`, stateFile);
  };
  const started = Date.now();
  const lab = import('../../tools/openstack-lab/launch').then(({ startOpenStackLab }) => startOpenStackLab({ log: () => undefined, stateDir: process.env.VMIGRATE_TEST_OPENSTACK_LAB_DIR }));
  lab.then(
    (l) => {
      const info: LabInfo = {
        authUrl: l.authUrl,
        region: l.region,
        admin: l.admin,
        zones: l.zones,
        volumeType: l.volumeType,
        shareExportDir: l.shareExportDir,
        networkId: l.networkId,
        publicNetworkId: l.publicNetworkId,
        computeHosts: l.computeHosts,
        libvirtUri: l.libvirtUri,
        libvirtHosts: l.libvirtHosts,
        logDir: path.join(l.stateDir, 'logs'),
        env: l.env(),
      };
      publish({ ready: info, startSeconds: (Date.now() - started) / 1000 });
    },
    (err: Error) => publish({ error: err.message }),
  );
  return {
    async stop() {
      const l = await lab.catch(() => undefined);
      if (!l) return;
      const stopping = Date.now();
      await l.stop();
      const state = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as { startSeconds?: number }) : {};
      // For the run's log: what the lab cost (the suite's own time is jest's).
      console.log(`[openstack-lab] ready ${state.startSeconds?.toFixed(1)} s after the run began; stopped in ${((Date.now() - stopping) / 1000).toFixed(1)} s`);
    },
  };
}

/**
 * For a failure's message: the errors (newest last; of a traceback its exceptions) the lab's libvirt computes logged since
 * `since`. A failed Nova operation's cause is often only there, and a CI run's log is all there is to read after it.
 */
export function computeErrorsSince(lab: LabInfo, since: Date, max = 30): string[] {
  const stamp = since.toISOString().replace('T', ' ').slice(0, 19);
  const lines: string[] = [];
  for (const h of lab.libvirtHosts) {
    const file = path.join(lab.logDir, `nova-compute-${h.host}.log`);
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      // Of a traceback, the exceptions and their messages: its frames and source lines are indented.
      // Nova's libvirt driver logs why it gave up on a migration as a warning with its traceback.
      const logged = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d+ \d+ (ERROR|WARNING) (\S+) (?:\[[^\]]*\] )*(.*)$/.exec(line);
      if (!logged || logged[1]! < stamp || !logged[4]!.trim() || /^\s/.test(logged[4]!)) continue;
      if (logged[2] === 'ERROR' ? logged[3]!.startsWith('oslo.messaging') : !/^nova\.(virt\.libvirt|compute\.manager)/.test(logged[3]!)) continue;
      lines.push(`${h.host} ${logged[1]} ${logged[2]}: ${logged[4]!.slice(0, 600)}`);
    }
  }
  return lines.slice(-max);
}

/** Test side: the lab, once it is up (the first test to ask waits for the start). */
export async function openStackLab(): Promise<LabInfo> {
  const file = process.env[STATE_ENV];
  if (!file) throw new Error('no OpenStack lab in this run: jest was started without the OpenStack tests selected');
  const deadline = Date.now() + LAB_START_TIMEOUT_MS;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`the OpenStack lab did not start within ${LAB_START_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const state = JSON.parse(readFileSync(file, 'utf8')) as { ready?: LabInfo; error?: string };
  if (state.error) throw new Error(`the OpenStack lab failed to start: ${state.error}`);
  return state.ready!;
}

export interface LabProject {
  lab: LabInfo;
  projectId: string;
  projectName: string;
  username: string;
  password: string;
  /** A file holding the password, as vmigrate's configuration references it. */
  passwordFile: string;
  /** The target entry for vmigrate's configuration: this user, scoped by the migration to this project. */
  targetConfig(extra?: Record<string, unknown>): Record<string, unknown>;
  /**
   * A network and subnet the project owns (`proj-net`, `proj-subnet`, 192.0.2.0/24, records only): Neutron's default
   * policy lets a project choose MACs and fixed IPs only on its own networks, not on the shared `lab-net`.
   */
  network: { name: string; id: string; subnetName: string; subnetId: string };
  /**
   * A target's `hostOperations` as the cloud's admin (live migration and host drains: admin-only in Nova's
   * policy), its password in a file beside the project's.
   */
  adminHostOperations(): Record<string, unknown>;
  /** An admin token, for checking what exists where. */
  adminToken(): Promise<string>;
  endpoint(type: string): Promise<string>;
}

/** A fresh project with a `member` user (what vmigrate acts as), and its network quota set large enough. */
export async function createLabProject(name: string, dir: string): Promise<LabProject> {
  const lab = await openStackLab();
  const unique = `${name}-${process.pid}-${Date.now().toString(36)}`;
  const admin = await issueToken(lab.authUrl, lab.admin);
  const keystone = lab.authUrl;
  const project = await call<{ project: { id: string } }>(admin.id, 'POST', `${keystone}/projects`, { project: { name: unique, domain_id: 'default' } });
  const password = `pw-${unique}`;
  const user = await call<{ user: { id: string } }>(admin.id, 'POST', `${keystone}/users`, { user: { name: `u-${unique}`, password, domain_id: 'default', default_project_id: project.project.id } });
  const roles = await call<{ roles: Array<{ id: string; name: string }> }>(admin.id, 'GET', `${keystone}/roles?name=member`);
  await call(admin.id, 'PUT', `${keystone}/projects/${project.project.id}/users/${user.user.id}/roles/${roles.roles[0].id}`, undefined, { expect: [204] });
  const passwordFile = path.join(dir, `${unique}.password`);
  await writeFile(passwordFile, password, { mode: 0o600 });
  const adminPasswordFile = path.join(dir, `${unique}.admin-password`);
  await writeFile(adminPasswordFile, lab.admin.password, { mode: 0o600 });
  const member = await issueToken(lab.authUrl, { username: `u-${unique}`, password, projectName: unique });
  const neutronUrl = member.body.token.catalog!.find((e) => e.type === 'network')!.endpoints.find((e) => e.interface === 'public')!.url.replace(/\/+$/, '');
  const net = await call<{ network: { id: string } }>(member.id, 'POST', `${neutronUrl}/v2.0/networks`, { network: { name: 'proj-net' } });
  const sub = await call<{ subnet: { id: string } }>(member.id, 'POST', `${neutronUrl}/v2.0/subnets`, {
    subnet: { name: 'proj-subnet', network_id: net.network.id, ip_version: 4, cidr: '192.0.2.0/24', enable_dhcp: false },
  });
  // A router from the project's subnet to the external lab-public, so its ports can have floating IPs.
  const router = await call<{ router: { id: string } }>(member.id, 'POST', `${neutronUrl}/v2.0/routers`, {
    router: { name: 'proj-router', external_gateway_info: { network_id: lab.publicNetworkId } },
  });
  await call(member.id, 'PUT', `${neutronUrl}/v2.0/routers/${router.router.id}/add_router_interface`, { subnet_id: sub.subnet.id });
  const endpoint = async (type: string) => {
    const tok = await issueToken(lab.authUrl, lab.admin);
    const entry = tok.body.token.catalog!.find((e) => e.type === type)!;
    const projectId = tok.body.token.project!.id;
    return entry.endpoints.find((e) => e.interface === 'public')!.url.replace(/[%$]\((?:project_id|tenant_id)\)s/g, projectId).replace(/\/+$/, '');
  };
  return {
    lab,
    projectId: project.project.id,
    projectName: unique,
    username: `u-${unique}`,
    password,
    passwordFile,
    network: { name: 'proj-net', id: net.network.id, subnetName: 'proj-subnet', subnetId: sub.subnet.id },
    adminHostOperations: () => ({ auth: { method: 'password', username: lab.admin.username, password: { file: adminPasswordFile } }, project: lab.admin.projectName }),
    adminToken: async () => (await issueToken(lab.authUrl, lab.admin)).id,
    endpoint,
    targetConfig: (extra = {}) => ({
      driver: 'openstack',
      authUrl: lab.authUrl,
      auth: { method: 'password', username: `u-${unique}`, password: { file: passwordFile } },
      region: lab.region,
      waitTimeoutSeconds: 300,
      volumeAccess: { mode: 'cinder-attachment', mountBase: path.join(dir, 'nfs-mounts') },
      ...extra,
    }),
  };
}

/** Admin's view of what exists in every project: the volumes, ports and servers tagged for a migration. */
export async function resourcesOfMigration(p: LabProject, migrationId: string): Promise<{ volumes: any[]; ports: any[]; servers: any[]; floatingIps: any[] }> {
  const token = await p.adminToken();
  const cinder = await p.endpoint('volumev3');
  const nova = await p.endpoint('compute');
  const neutron = await p.endpoint('network');
  const meta = encodeURIComponent(JSON.stringify({ 'vmigrate.migration': migrationId }));
  const volumes = (await call<{ volumes: any[] }>(token, 'GET', `${cinder}/volumes/detail?all_tenants=1&metadata=${meta}`)).volumes;
  const tag = encodeURIComponent(`vmigrate:${migrationId}`);
  const ports = (await call<{ ports: any[] }>(token, 'GET', `${neutron}/v2.0/ports?tags=${tag}`)).ports;
  const servers = (await call<{ servers: any[] }>(token, 'GET', `${nova}/servers/detail?all_tenants=1&tags=${tag}`, undefined, { headers: { 'openstack-api-version': 'compute 2.67' } })).servers;
  const floatingIps = (await call<{ floatingips: any[] }>(token, 'GET', `${neutron}/v2.0/floatingips?tags=${tag}`)).floatingips;
  return { volumes, ports, servers, floatingIps };
}
