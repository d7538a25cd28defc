/**
 * What the Temporal cluster lab runs: the same server version as docker-compose.temporal.yml (a test keeps the two
 * in step), PostgreSQL from Debian, and the loopback ports of each process.
 */
export const TEMPORAL_SERVER_VERSION = '1.30.1';
export const POSTGRES_MAJOR = 15;
/** temporalio/ui-server, the server in the temporalio/ui image; the same Web UI the dev server embeds. */
export const TEMPORAL_UI_VERSION = '2.54.1';

export const CLUSTER_PORTS = {
  postgres: 15432,
  frontend: { grpc: 17233, membership: 16933, http: 17243 },
  history: { grpc: 17234, membership: 16934 },
  matching: { grpc: 17235, membership: 16935 },
  worker: { grpc: 17239, membership: 16939 },
  metrics: 18000,
  webUi: 18233,
} as const;

/** The lab's ports moved by `offset` (a test cluster beside a running lab uses another range). */
export function clusterPorts(offset = 0) {
  const o = (port: number) => port + offset;
  const p = CLUSTER_PORTS;
  return {
    postgres: o(p.postgres),
    frontend: { grpc: o(p.frontend.grpc), membership: o(p.frontend.membership), http: o(p.frontend.http) },
    history: { grpc: o(p.history.grpc), membership: o(p.history.membership) },
    matching: { grpc: o(p.matching.grpc), membership: o(p.matching.membership) },
    worker: { grpc: o(p.worker.grpc), membership: o(p.worker.membership) },
    metrics: o(p.metrics),
    webUi: o(p.webUi),
  };
}
export type ClusterPorts = ReturnType<typeof clusterPorts>;

export type TemporalService = 'frontend' | 'history' | 'matching' | 'worker';
export const TEMPORAL_SERVICES: TemporalService[] = ['history', 'matching', 'frontend', 'worker'];
