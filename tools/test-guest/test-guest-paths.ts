import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEST_GUEST_BASE, TEST_GUEST_VARIANTS, type GuestVariantName } from './recipe';

/** Sources whose content decides the images: any change to them makes new cache keys. */
const RECIPE_SOURCES = ['recipe.ts', 'base-tree.ts', 'build-test-guest.ts', 'guest-files.ts', 'guest-identity.ts', 'grub-bios-boot.ts', 'lvm-physical-volume.ts', 'xfs-protofile.ts'];

/** sha256 of the base recipe, the variant's recipe and the builders, shortened: the variant's cache key. */
export function testGuestRecipeHash(variant: GuestVariantName = 'bios'): string {
  const recipe = TEST_GUEST_VARIANTS[variant];
  if (!recipe) throw new Error(`unknown test guest variant '${variant}' (known: ${Object.keys(TEST_GUEST_VARIANTS).join(', ')})`);
  const h = createHash('sha256').update(JSON.stringify(TEST_GUEST_BASE)).update(JSON.stringify(recipe));
  for (const f of RECIPE_SOURCES) h.update(readFileSync(path.join(__dirname, f)));
  return h.digest('hex').slice(0, 16);
}

/** Outside the repository, shared by every checkout and test run on the machine. */
export function vmigrateCacheDir(): string {
  return process.env.VMIGRATE_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'vmigrate');
}

export function testGuestPaths(variant: GuestVariantName = 'bios', hash = testGuestRecipeHash(variant)) {
  const dir = path.join(vmigrateCacheDir(), 'test-guest');
  const stem = path.join(dir, `${variant}-${hash}`);
  return {
    dir,
    /** Boot disk first. */
    disks: TEST_GUEST_VARIANTS[variant].dataDisk ? [`${stem}.img`, `${stem}.disk1.img`] : [`${stem}.img`],
    lock: path.join(dir, 'build.lock'),
    buildLog: `${stem}.build.log`,
    debCacheDir: path.join(dir, 'debs'),
  };
}
