import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../config/vmigrate-config';
import { OpenStackTargetProvider } from '../../targets/openstack/openstack-target-provider';
import type { OpenStackTargetConfig } from '../../targets/target-config';
import { call } from '../../tools/openstack-lab/rest';
import { createLabProject } from '../harness/openstack-lab';
import { describeTargetProviderContract } from '../targets/target-provider-contract';

describeTargetProviderContract(
  'openstack (real Keystone, Cinder with the NFS driver, Nova fake computes, Neutron)',
  async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-contract-'));
    const p = await createLabProject('contract', dir);
    const config = parseConfig({ sources: {}, targets: { lab: p.targetConfig() }, defaultTarget: 'lab' }, dir);
    const provider = new OpenStackTargetProvider({ name: 'lab', config: config.targets.lab as OpenStackTargetConfig, workDir: dir });
    return {
      provider,
      project: p.projectName,
      volumeType: p.lab.volumeType,
      flavor: 'm1.tiny',
      availabilityZone: p.lab.zones.fake,
      nics: [
        { sourceMac: '00:50:56:0a:0b:01', network: p.network.name, subnet: p.network.subnetName, preserveMac: true, fixedIps: ['192.0.2.50'] },
        { sourceMac: '00:50:56:0a:0b:02', network: p.network.name, preserveMac: true },
        // The shared network: the cloud picks the MAC (the project may not choose one there).
        { sourceMac: '00:50:56:0a:0b:03', network: 'lab-net', preserveMac: false },
      ],
      async instanceMacs(serverId: string) {
        const neutron = await p.endpoint('network');
        const ports = await call<{ ports: Array<{ mac_address: string }> }>(await p.adminToken(), 'GET', `${neutron}/v2.0/ports?device_id=${serverId}`);
        return ports.ports.map((x) => x.mac_address);
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  { timeoutMs: 240_000 },
);
