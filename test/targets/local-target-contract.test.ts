import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalTargetProvider } from '../../targets/local/local-target-provider';
import { describeTargetProviderContract } from './target-provider-contract';

describeTargetProviderContract('local', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-contract-'));
  return {
    provider: new LocalTargetProvider({ dataDir: path.join(dir, 'data') }),
    project: 'proj',
    volumeType: 'ssd',
    flavor: 'm1.small',
    nics: [{ sourceMac: '00:50:56:aa:bb:01', network: 'net1', preserveMac: true }],
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
