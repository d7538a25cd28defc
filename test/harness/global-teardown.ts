import type { DevServer } from '../../tools/temporal-dev-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { __vmigrateDevServer?: DevServer }).__vmigrateDevServer;
  await server?.stop();
}
