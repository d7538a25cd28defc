import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { testGuestPaths, testGuestRecipeHash } from './test-guest-paths';

export interface TestGuestImage {
  /** Raw, sparse, MBR-partitioned, 2 GiB: a Debian 12 guest that looks installed on VMware. */
  path: string;
  recipeHash: string;
  /** Whether this call built it (false: it was in the cache, or VMIGRATE_TEST_GUEST_IMAGE named it). */
  built: boolean;
  durationMs: number;
}

/**
 * The test guest image from the cache (${VMIGRATE_CACHE_DIR:-~/.cache/vmigrate}/test-guest/<recipe-hash>.img),
 * built first if it is missing. The build runs under an flock, so test files running in parallel build it once and
 * the others wait for it. Treat the file as read-only: copy it before changing it.
 */
export async function ensureTestGuest(opts: { onBuildStart?: () => void } = {}): Promise<TestGuestImage> {
  const started = Date.now();
  const given = process.env.VMIGRATE_TEST_GUEST_IMAGE;
  if (given) {
    if (!existsSync(given)) throw new Error(`VMIGRATE_TEST_GUEST_IMAGE=${given} does not exist`);
    return { path: given, recipeHash: 'given', built: false, durationMs: 0 };
  }
  const recipeHash = testGuestRecipeHash();
  const paths = testGuestPaths(recipeHash);
  if (existsSync(paths.image)) return { path: paths.image, recipeHash, built: false, durationMs: Date.now() - started };
  opts.onBuildStart?.();
  await mkdir(paths.dir, { recursive: true });
  // The builder checks again for the image once it holds the lock: whoever waited finds it built.
  const cli = path.join(__dirname, 'build-test-guest.ts');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('flock', [paths.lock, process.execPath, '--import', 'tsx', cli], { cwd: path.resolve(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`building the test guest failed (exit ${code}); see ${paths.buildLog}\n${out.slice(-3000)}`))));
  });
  if (!existsSync(paths.image)) throw new Error(`the test guest builder finished but ${paths.image} is missing`);
  return { path: paths.image, recipeHash, built: true, durationMs: Date.now() - started };
}
