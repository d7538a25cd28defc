import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import axios, { type AxiosInstance } from 'axios';
import pino from 'pino';
import { createApp } from '../../api/app';
import { targetCatalog } from '../../targets/target-catalog';
import type { MigrationEnv } from './migration-env';

/** The real Express app on a random local port, talking to the env's Temporal and target. */
export async function startApi(env: MigrationEnv): Promise<{ http: AxiosInstance; url: string; close(): Promise<void> }> {
  const app = createApp({
    client: env.client,
    taskQueue: env.taskQueue,
    sourceIds: Object.keys(env.config.sources),
    targets: targetCatalog(env.config),
    logger: pino({ level: 'silent' }),
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    http: axios.create({ baseURL: url, validateStatus: () => true }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Poll GET /migrations/:id (as a client would) until `done` says so, or the migration leaves RUNNING. */
export async function waitForMigration(
  http: AxiosInstance,
  id: string,
  opts: { done?: (status: any) => boolean; timeoutMs?: number; onPoll?: (status: any) => Promise<void> | void } = {},
): Promise<any> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const res = await http.get(`/migrations/${id}`);
    if (res.status !== 200) throw new Error(`GET /migrations/${id} answered ${res.status}: ${JSON.stringify(res.data)}`);
    await opts.onPoll?.(res.data);
    if (opts.done ? opts.done(res.data) : res.data.status !== 'RUNNING') return res.data;
    if (Date.now() > deadline) throw new Error(`migration ${id} still ${res.data.status}/${res.data.stage} after ${opts.timeoutMs ?? 120_000} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
