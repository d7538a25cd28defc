import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { parseConfig, type VmigrateConfig } from '../../config/vmigrate-config';
import { LocalTargetProvider } from '../../targets/local/local-target-provider';
import { makeDiskImage } from '../../tools/disk-image';
import { VimClient } from '../../vsphere/vim-client';
import { startSimulator, type SimSpec, type Simulator } from '../../tools/vcsim/launch';
import type { GuestToolHooks } from '../../activities';
import { createVmigrateWorker, type VmigrateWorker, type WorkerRole } from '../../workers/create-worker';
import { agentsConfig } from './agent-lab';
import { connectClient, connectNative, uniqueTaskQueue, workflowBundle } from './temporal';

/**
 * Everything a migration needs, for real: the vSphere simulator with VMs, a config file naming it as a source (the
 * password in a file, as in production), a data directory for the local target, and Temporal on a fresh task queue.
 */
export interface MigrationEnv {
  dir: string;
  sim: Simulator;
  config: VmigrateConfig;
  configFile: string;
  target: LocalTargetProvider;
  client: Client;
  taskQueue: string;
  /** Disk images written onto the simulator VMs' disks, by VM name (see `diskImages`). */
  images: Record<string, string>;
  startWorker(role?: WorkerRole, hooks?: { guestTools?: GuestToolHooks }): Promise<VmigrateWorker>;
  /** The source VM's power state, read through a fresh vSphere session. */
  powerState(vmName: string): Promise<string>;
  close(): Promise<void>;
}

export const SIM_PASSWORD = 'test-password-not-a-secret';

export interface EnvOptions {
  filters?: Array<{ name: string; params?: Record<string, string> }>;
  connections?: number;
  /** VM name → size in bytes: build a real disk image (tools/disk-image.ts) and upload it over the VM's first disk. */
  diskImages?: Record<string, number>;
  /** More configured targets beside the local one (e.g. an OpenStack lab project), and which is the default. */
  targets?: Record<string, unknown>;
  defaultTarget?: string;
  /** The local target's data directory counts as storage every worker mounts (no host affinity). */
  sharedStorage?: boolean;
  /** More sources on the same simulator: limited to projects, or with a password it refuses. */
  extraSources?: ExtraSources | ((sim: Simulator, dir: string) => Promise<ExtraSources>);
  /** Agent-based migration: the agent endpoint and gateway, reached by agents at this address (test/harness/agent-lab.ts). */
  agentsReachAt?: string;
  /** Agents' session tokens last this long (default a day): short, the agents renew them during the test. */
  agentSessionLifetimeSeconds?: number;
  /** The local target's flavors instead of m1.small … m1.xlarge. */
  localFlavors?: Array<{ name: string; vcpus: number; ramMB: number }>;
}

export type ExtraSources = Record<string, { projects?: string[]; wrongPassword?: boolean; insecure?: boolean; tls?: { caFile?: string; thumbprint?: string } }>;

export async function createMigrationEnv(
  name: string,
  spec: SimSpec,
  opts: EnvOptions = {},
): Promise<MigrationEnv> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `vmigrate-${name}-`));
  let sim: Simulator | undefined;
  try {
    sim = await startSimulator({ spec, username: 'migrator', password: SIM_PASSWORD });
    return await assembleEnv(name, dir, sim, opts);
  } catch (err) {
    // A half-built env must not leak its simulator or files into the rest of the run.
    await sim?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function assembleEnv(name: string, dir: string, sim: Simulator, opts: EnvOptions): Promise<MigrationEnv> {
  const images: Record<string, string> = {};
  for (const [vm, size] of Object.entries(opts.diskImages ?? {})) {
    images[vm] = path.join(dir, `${vm}.img`);
    await makeDiskImage(images[vm], size);
    await sim.uploadDiskImage(vm, 0, images[vm]);
  }
  const passwordFile = path.join(dir, 'vc.password');
  await writeFile(passwordFile, SIM_PASSWORD, { mode: 0o600 });
  const rawConfig = {
    sources: {
      sim: {
        url: sim.url,
        username: 'migrator',
        passwordFile,
        insecure: true,
        transport: { plugin: 'curl', filters: opts.filters ?? [], connections: opts.connections ?? 2 },
      },
      ...Object.fromEntries(
        await Promise.all(
          Object.entries((typeof opts.extraSources === 'function' ? await opts.extraSources(sim, dir) : opts.extraSources) ?? {}).map(async ([id, extra]) => {
            const file = extra.wrongPassword ? path.join(dir, `${id}.password`) : passwordFile;
            if (extra.wrongPassword) await writeFile(file, 'not-the-password', { mode: 0o600 });
            return [id, { url: sim.url, username: 'migrator', passwordFile: file, insecure: extra.insecure ?? true, ...(extra.tls ? { tls: extra.tls } : {}), ...(extra.projects ? { projects: extra.projects } : {}) }];
          }),
        ),
      ),
    },
    targets: { local: { driver: 'local', dataDir: path.join(dir, 'data'), ...(opts.sharedStorage ? { sharedStorage: true } : {}) }, ...(opts.targets ?? {}) },
    ...(opts.defaultTarget ? { defaultTarget: opts.defaultTarget } : {}),
    workDir: path.join(dir, 'data', 'work'),
    ...(opts.agentsReachAt ? { agents: await agentsConfig(dir, opts.agentsReachAt, opts.agentSessionLifetimeSeconds) } : {}),
  };
  const configFile = path.join(dir, 'vmigrate.config.json');
  await writeFile(configFile, JSON.stringify(rawConfig, null, 2));
  const config = parseConfig(rawConfig, dir);
  const target = new LocalTargetProvider({ dataDir: path.join(dir, 'data'), sharedStorage: opts.sharedStorage, ...(opts.localFlavors ? { flavors: opts.localFlavors } : {}) });
  const { client, connection } = await connectClient();
  const taskQueue = uniqueTaskQueue(name);
  const workers: Array<{ worker: VmigrateWorker; run: Promise<void>; conn: NativeConnection }> = [];
  const logger = pino({ level: 'warn' });

  return {
    dir,
    sim,
    config,
    configFile,
    target,
    client,
    taskQueue,
    images,
    async powerState(vmName: string) {
      const vc = await VimClient.login({ url: sim.url, username: 'migrator', password: SIM_PASSWORD, insecure: true });
      try {
        return await vc.getPowerState(await vc.findVm({ name: vmName }));
      } finally {
        await vc.logout();
      }
    },
    async startWorker(role: WorkerRole = 'all', hooks: { guestTools?: GuestToolHooks } = {}) {
      const conn = await connectNative();
      const worker = await createVmigrateWorker({
        connection: conn,
        taskQueue,
        config,
        logger,
        role,
        targets: [target],
        guestTools: hooks.guestTools,
        workflowBundle: role === 'activities' ? undefined : await workflowBundle(),
      });
      workers.push({ worker, run: worker.run(), conn });
      return worker;
    },
    async close() {
      try {
        for (const w of workers) {
          if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
          await w.run.catch(() => undefined);
          await w.conn.close().catch(() => undefined);
        }
        await (connection as Connection).close().catch(() => undefined);
      } finally {
        await sim.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
