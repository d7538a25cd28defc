import { ApplicationFailure } from '@temporalio/workflow';
import { agentMachinePlan } from '../../source/agent/agent-machine-plan';
import { vsphereMachinePlan } from '../../source/vsphere/vsphere-source';
import { capabilitiesOf, requireCapabilities } from '../../workflows/source-capabilities';

const machine = {
  firmware: 'bios' as const,
  cpu: { sockets: 1, coresPerSocket: 2, threads: 2 },
  memoryBytes: 1 << 30,
  nics: [],
  disks: [{ index: 0, name: 'sda', sizeBytes: 1 << 30 }],
  guest: { type: 'linux' as const, name: 'db01', hostname: 'db01' },
  bootId: '0123456789abcdef',
  agentVersion: '1',
};

describe('source capabilities as the workflows gate on them', () => {
  it('a plan recorded before sources declared capabilities is vSphere: it can do everything', () => {
    expect(capabilitiesOf({})).toEqual({ powerControl: true, changeTracking: true, snapshots: true });
    expect(() => requireCapabilities({ name: 'web01' }, ['changeTracking', 'snapshots'], 'a warm migration')).not.toThrow();
  });

  it("vSphere's plan declares them all; an agent's machine none", () => {
    const vs = vsphereMachinePlan({ name: 'web01', moref: 'vm-1', guestId: 'debian12_64Guest', firmware: 'bios', numCPU: 2, memoryMB: 2048, powerState: 'poweredOn', disks: [], nics: [] } as never);
    expect(vs.capabilities).toEqual({ powerControl: true, changeTracking: true, snapshots: true });
    expect(agentMachinePlan('m-0123456789abcdef0123', machine).capabilities).toEqual({ powerControl: false, changeTracking: false, snapshots: false });
  });

  it('a warm migration of a source without change tracking is refused at preflight, naming what is missing', () => {
    const plan = { name: 'db01', capabilities: agentMachinePlan('m-0123456789abcdef0123', machine).capabilities };
    let err: unknown;
    try {
      requireCapabilities(plan, ['changeTracking', 'snapshots'], 'a warm migration');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({
      type: 'PreflightError',
      nonRetryable: true,
      message: 'a warm migration of db01 needs changed-block tracking and snapshots of a running VM, which its source cannot do; migrate it cold',
    });
  });
});
