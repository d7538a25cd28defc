import { rm } from 'node:fs/promises';
import type { DevServer } from '../../tools/temporal-dev-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { __vmigrateDevServer?: DevServer }).__vmigrateDevServer;
  const lab = (globalThis as { __vmigrateOpenStackLab?: { stop(): Promise<void> } }).__vmigrateOpenStackLab;
  const cluster = (globalThis as { __vmigrateCluster?: { stop(): Promise<void> } }).__vmigrateCluster;
  const bundle = process.env.VMIGRATE_TEST_WORKFLOW_BUNDLE;
  await Promise.all([server?.stop(), lab?.stop(), cluster?.stop(), bundle && rm(bundle, { force: true })]);
}
