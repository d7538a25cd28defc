import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';
import { MIGRATION_WORKFLOW_TYPES } from '../shared/migration-stages';
import { sdkLogLevel } from './sdk-log-levels';

const MIGRATION_WORKFLOWS = new Set(MIGRATION_WORKFLOW_TYPES);

/** The SDK's log fields, with the migration a workflow or activity line belongs to as `migrationId`. */
export function logFieldsOf(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  const fields = { ...meta };
  if (typeof meta?.workflowId === 'string' && typeof meta.workflowType === 'string' && MIGRATION_WORKFLOWS.has(meta.workflowType)) fields.migrationId = meta.workflowId;
  return fields;
}

/**
 * The process's Temporal runtime, installed before any connection: SDK log lines go to pino as JSON (with the
 * migration id on every line of a migration's workflow and activities), and with VMIGRATE_SDK_METRICS_ADDRESS
 * (host:port) the SDK's own metrics (task latencies, slots, polls, …) are served there for Prometheus.
 */
export function installWorkerRuntime(logger: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const sdkLevel = env.TEMPORAL_LOG_LEVEL ?? 'INFO';
  if (!['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'].includes(sdkLevel)) throw new Error(`TEMPORAL_LOG_LEVEL must be TRACE, DEBUG, INFO, WARN or ERROR (got '${sdkLevel}')`);
  const metricsAddress = env.VMIGRATE_SDK_METRICS_ADDRESS;
  Runtime.install({
    logger: new DefaultLogger(sdkLevel as LogLevel, (entry) => {
      const level = sdkLogLevel(entry.level, entry.message).toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      logger[level](logFieldsOf(entry.meta), entry.message);
    }),
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } } : {}),
  });
}
