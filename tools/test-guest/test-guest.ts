import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { guestIdentity, type GuestIdentity } from './guest-identity';
import { TEST_GUEST_VARIANTS, type GuestVariantName, type TestGuestVariant } from './recipe';
import { testGuestPaths, testGuestRecipeHash } from './test-guest-paths';

export interface TestGuestImage {
  variant: TestGuestVariant;
  /** The boot disk: raw, sparse, 2 GiB, a Debian 12 guest that looks installed on VMware. */
  path: string;
  /** Every disk, boot disk first. */
  disks: string[];
  recipeHash: string;
  /** The ids its disks carry (file system UUIDs, partition GUIDs, LVM ids). */
  identity: GuestIdentity;
  /** Whether this call built it (false: it was in the cache, or VMIGRATE_TEST_GUEST_IMAGE named it). */
  built: boolean;
  durationMs: number;
}

/**
 * A test guest variant from the cache (${VMIGRATE_CACHE_DIR:-~/.cache/vmigrate}/test-guest/<variant>-<hash>.img),
 * built first if it is missing. The build runs under an flock, so test files running in parallel build each image
 * once and the others wait for it. Treat the files as read-only: copy them before changing them.
 * VMIGRATE_TEST_GUEST_IMAGE names a prebuilt image of the BIOS variant instead.
 */
export async function ensureTestGuest(variantName: GuestVariantName = 'bios', opts: { onBuildStart?: () => void } = {}): Promise<TestGuestImage> {
  const started = Date.now();
  const variant = TEST_GUEST_VARIANTS[variantName];
  if (!variant) throw new Error(`unknown test guest variant '${variantName}' (known: ${Object.keys(TEST_GUEST_VARIANTS).join(', ')})`);
  const given = variantName === 'bios' ? process.env.VMIGRATE_TEST_GUEST_IMAGE : undefined;
  const recipeHash = testGuestRecipeHash(variantName);
  const identity = guestIdentity(recipeHash);
  if (given) {
    if (!existsSync(given)) throw new Error(`VMIGRATE_TEST_GUEST_IMAGE=${given} does not exist`);
    return { variant, path: given, disks: [given], recipeHash: 'given', identity, built: false, durationMs: 0 };
  }
  const paths = testGuestPaths(variantName, recipeHash);
  const result = (built: boolean): TestGuestImage => ({ variant, path: paths.disks[0], disks: paths.disks, recipeHash, identity, built, durationMs: Date.now() - started });
  if (paths.disks.every((d) => existsSync(d))) return result(false);
  opts.onBuildStart?.();
  await mkdir(paths.dir, { recursive: true });
  // The builder checks again for the images once it holds the lock: whoever waited finds them built.
  const cli = path.join(__dirname, 'build-test-guest.ts');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('flock', [paths.lock, process.execPath, '--import', 'tsx', cli, variantName], { cwd: path.resolve(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`building the ${variantName} test guest failed (exit ${code}); see ${paths.buildLog}\n${out.slice(-3000)}`))));
  });
  const missing = paths.disks.filter((d) => !existsSync(d));
  if (missing.length) throw new Error(`the test guest builder finished but ${missing.join(', ')} is missing`);
  return result(true);
}
