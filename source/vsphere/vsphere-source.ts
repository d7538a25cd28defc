import { mkdir } from 'node:fs/promises';
import { resolveSource } from '../../config/source-credentials';
import type { VmigrateConfig } from '../../config/vmigrate-config';
import { VimClient } from '../../vsphere/vim-client';
import type { VmHardware } from '../../vsphere/vm-hardware';
import { openDiskExport } from '../disk-export';
import type { SourceMachinePlan, SourceProvider } from '../source-provider';
import { connectOptionsOf, withVmSession } from './vm-session';

/** vSphere's capabilities: power control, changed-block tracking, snapshots. */
export const VSPHERE_CAPABILITIES = { powerControl: true, changeTracking: true, snapshots: true } as const;

/** A VM as a source machine plan (its moref is its machine id). */
export function vsphereMachinePlan(hw: VmHardware): SourceMachinePlan {
  const family = (hw.guestFamily ?? '').toLowerCase();
  return {
    kind: 'vsphere',
    machineId: hw.moref.value,
    name: hw.name,
    hardware: {
      // vSphere's numCPU counts cores; without the socket layout read, every core is its own socket.
      sockets: hw.numCPU,
      coresPerSocket: 1,
      memoryBytes: hw.memoryMB * 1024 * 1024,
      firmware: hw.firmware,
      secureBoot: hw.secureBoot,
      nics: hw.nics.map((n) => ({ mac: n.macAddress, network: n.network })),
    },
    guest: { family: family.startsWith('windows') || hw.guestId.startsWith('win') ? 'windows' : family.startsWith('linux') ? 'linux' : 'other' },
    disks: hw.disks.map((d) => ({ key: d.key, label: d.label, capacityBytes: d.capacityBytes })),
    capabilities: VSPHERE_CAPABILITIES,
  };
}

/**
 * A configured vSphere source (vCenter or ESXi) as a SourceProvider: credentials are resolved here, on the worker.
 * An open disk keeps its own session (nbdkit reads the datastore with its cookie) until it is closed.
 */
export function vsphereSource(config: VmigrateConfig, sourceId: string): SourceProvider {
  return {
    kind: 'vsphere',
    planMachine: (moref) => withVmSession(config, sourceId, { moref }, async ({ client, vm }) => vsphereMachinePlan(await client.getVmHardware(vm))),
    async openDisk(moref, diskKey, opts) {
      await mkdir(opts.workDir, { recursive: true });
      const source = resolveSource(config, sourceId);
      const client = await VimClient.login(connectOptionsOf(source));
      try {
        const hw = await client.getVmHardware(await client.findVm({ moref }));
        const disk = hw.disks.find((d) => d.key === diskKey);
        if (!disk) throw new Error(`VM ${moref} has no disk with key ${diskKey}`);
        const exp = await openDiskExport({ source, session: client, vm: hw, disk, workDir: opts.workDir, connections: opts.connections });
        return {
          size: exp.size,
          connections: exp.connections,
          get socketPath() {
            return exp.socketPath;
          },
          reconnect: (i) => exp.reconnect(i),
          async close() {
            try {
              await exp.close();
            } finally {
              await client.logout().catch(() => undefined);
            }
          },
        };
      } catch (err) {
        await client.logout().catch(() => undefined);
        throw err;
      }
    },
    power: {
      powerOff: (moref) =>
        withVmSession(config, sourceId, { moref }, async ({ client, vm }) => {
          const previous = await client.getPowerState(vm);
          if (previous !== 'poweredOff') await client.powerOff(vm, { timeoutMs: 4 * 60_000 });
          return { previous };
        }),
      powerOn: (moref) =>
        withVmSession(config, sourceId, { moref }, async ({ client, vm }) => {
          if ((await client.getPowerState(vm)) === 'poweredOff') await client.powerOn(vm, { timeoutMs: 4 * 60_000 });
        }),
    },
  };
}
