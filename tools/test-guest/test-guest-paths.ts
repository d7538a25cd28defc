import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEST_GUEST_RECIPE } from './recipe';

/** Sources whose content decides the image: any change to them makes a new cache key. */
const RECIPE_SOURCES = ['recipe.ts', 'build-test-guest.ts', 'grub-bios-boot.ts'];

/** sha256 of the recipe and the builder, shortened: the cache key. */
export function testGuestRecipeHash(): string {
  const h = createHash('sha256').update(JSON.stringify(TEST_GUEST_RECIPE));
  for (const f of RECIPE_SOURCES) h.update(readFileSync(path.join(__dirname, f)));
  return h.digest('hex').slice(0, 16);
}

/** Outside the repository, shared by every checkout and test run on the machine. */
export function vmigrateCacheDir(): string {
  return process.env.VMIGRATE_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'vmigrate');
}

export function testGuestPaths(hash = testGuestRecipeHash()) {
  const dir = path.join(vmigrateCacheDir(), 'test-guest');
  return {
    dir,
    image: path.join(dir, `${hash}.img`),
    lock: path.join(dir, 'build.lock'),
    buildLog: path.join(dir, `${hash}.build.log`),
    debCacheDir: path.join(dir, 'debs'),
  };
}

/** The root file system's UUID and the MBR disk id, derived from the recipe hash so a rebuild is reproducible. */
export function testGuestIdentity(hash = testGuestRecipeHash()): { rootUuid: string; diskId: string } {
  const h = createHash('sha256').update(`vmigrate-test-guest:${hash}`).digest('hex');
  const rootUuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  return { rootUuid, diskId: `0x${h.slice(32, 40)}` };
}
