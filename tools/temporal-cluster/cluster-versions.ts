/**
 * What the Temporal cluster lab runs: the same server version as docker-compose.temporal.yml (a test keeps the two
 * in step), PostgreSQL from Debian, and the loopback ports of each process.
 */
export const TEMPORAL_SERVER_VERSION = '1.30.1';
export const POSTGRES_MAJOR = 15;

export const CLUSTER_PORTS = {
  postgres: 15432,
  frontend: { grpc: 17233, membership: 16933, http: 17243 },
  history: { grpc: 17234, membership: 16934 },
  matching: { grpc: 17235, membership: 16935 },
  worker: { grpc: 17239, membership: 16939 },
  metrics: 18000,
} as const;

export type TemporalService = 'frontend' | 'history' | 'matching' | 'worker';
export const TEMPORAL_SERVICES: TemporalService[] = ['history', 'matching', 'frontend', 'worker'];
