import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import axios, { type AxiosInstance } from 'axios';
import pino from 'pino';
import type { Logger } from 'pino';
import { apiDepsFromConfig } from '../../api/api-deps';
import { createApp } from '../../api/app';
import type { IdentityProvider, Role } from '../../identity/identity-provider';
import { StaticIdentity, newApiToken, tokenHash } from '../../identity/static-identity';
import type { MigrationEnv } from './migration-env';

export interface ApiUser {
  name: string;
  projects: string[] | '*';
  role: Role;
}

export interface TestApi {
  /** Requests as the harness's admin (every project). */
  http: AxiosInstance;
  url: string;
  /** Requests as one of the users the API was started with. */
  as(user: string): AxiosInstance;
  /** Requests with no token at all. */
  anonymous: AxiosInstance;
  /** The raw tokens (tests look for them where they must not be). */
  tokens: Record<string, string>;
  close(): Promise<void>;
}

/**
 * The real Express app on a random local port, talking to the env's Temporal and target, with static-identity
 * users: `admin` (every project) plus the ones given; each gets a fresh random token.
 */
export async function startApi(
  env: MigrationEnv,
  opts: {
    users?: ApiUser[];
    logger?: Logger;
    eventPollMs?: number;
    eventStreamsPerUser?: number;
    admission?: MigrationEnv['config']['admission'];
    /** Another identity backend instead of the static users (e.g. the lab's Keystone); `http` then has no token. */
    identity?: IdentityProvider;
  } = {},
): Promise<TestApi> {
  const users: ApiUser[] = [{ name: 'admin', projects: '*', role: 'admin' }, ...(opts.users ?? [])];
  const tokens = Object.fromEntries(users.map((u) => [u.name, newApiToken()]));
  const identity = opts.identity ?? new StaticIdentity({
    backend: 'static',
    tokens: users.map((u) => ({ sha256: tokenHash(tokens[u.name]), user: u.name, projects: u.projects === '*' ? ['*'] : u.projects, role: u.role })),
  });
  const config = opts.admission ? { ...env.config, admission: opts.admission } : env.config;
  const app = createApp({
    ...apiDepsFromConfig(config, { client: env.client, taskQueue: env.taskQueue, logger: opts.logger ?? pino({ level: 'silent' }), identity }),
    ...(opts.eventPollMs ? { eventPollMs: opts.eventPollMs } : {}),
    ...(opts.eventStreamsPerUser ? { eventStreamsPerUser: opts.eventStreamsPerUser } : {}),
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const as = (user: string) => {
    if (!tokens[user]) throw new Error(`no API user ${user}`);
    return axios.create({ baseURL: url, validateStatus: () => true, headers: { Authorization: `Bearer ${tokens[user]}` } });
  };
  return {
    url,
    http: as('admin'),
    as,
    anonymous: axios.create({ baseURL: url, validateStatus: () => true }),
    tokens,
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
