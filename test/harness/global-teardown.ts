import type { DevServer } from '../../tools/temporal-dev-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { __vmigrateDevServer?: DevServer }).__vmigrateDevServer;
  const lab = (globalThis as { __vmigrateOpenStackLab?: { stop(): Promise<void> } }).__vmigrateOpenStackLab;
  await Promise.all([server?.stop(), lab?.stop()]);
}
