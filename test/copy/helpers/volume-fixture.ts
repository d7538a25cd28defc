/** A real LocalTargetProvider volume in a temp dir: the engine's tests write to actual sparse files. */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BlockTarget } from '../../../copy/block-device';
import { LocalTargetProvider } from '../../../targets/local/local-target-provider';

export class VolumeFixture {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-copy-'));
  readonly driver = new LocalTargetProvider({ dataDir: path.join(this.dir, 'data') });
  readonly digestLogPath = path.join(this.dir, 'work', 'disk.digests');
  private readonly open: BlockTarget[] = [];

  async volume(size: number, name = 'disk0'): Promise<{ target: BlockTarget; file: string }> {
    const ref = await this.driver.createVolume({ project: 'p', name, sizeBytes: size, volumeType: 'raw', owner: { migrationId: 'copy-test', disk: name } });
    const target = await this.driver.openVolume(ref);
    this.open.push(target);
    return { target, file: this.driver.volumePath('p', name) };
  }

  readVolume(name = 'disk0'): Promise<Buffer> {
    return readFile(this.driver.volumePath('p', name));
  }

  async cleanup(): Promise<void> {
    for (const t of this.open) await t.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
