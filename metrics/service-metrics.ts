/**
 * The service's state as Prometheus metrics, read from Temporal when scraped: migrations by stage and kind,
 * finished ones by outcome, the admission queue, and each warm migration's predicted downtime (its forecast final
 * sync). Served by the API beside the metrics of the copies this process ran (copy-metrics.ts).
 */
import type { Client } from '@temporalio/client';
import { Gauge, Registry } from 'prom-client';
import { MIGRATION_WORKFLOW_TYPES } from '../shared/migration-stages';
import { MigrationKind, MigrationState } from '../shared/search-attributes';
import { admissionQueueQuery, admissionWorkflowId } from '../workflows/admission-messages';
import { warmMigrationStateQuery } from '../workflows/warm-migration-state';
import { processRegistry } from './copy-metrics';

/** Running warm migrations asked for their forecast per scrape, at most. */
const FORECASTS_PER_SCRAPE = 50;
const QUERY_TIMEOUT_MS = 3000;

function withTimeout<T>(p: Promise<T>): Promise<T | undefined> {
  return Promise.race([p.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), QUERY_TIMEOUT_MS).unref())]);
}

export async function serviceMetrics(client: Client, taskQueue: string): Promise<{ contentType: string; text: string }> {
  // The task queue is the deployment's configuration, not user input; checked before it enters a query anyway.
  if (!/^[A-Za-z0-9._@-]+$/.test(taskQueue)) throw new Error(`task queue ${JSON.stringify(taskQueue)} cannot be put into a visibility query`);
  const base = `TaskQueue = '${taskQueue}' AND WorkflowType IN (${MIGRATION_WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ')})`;
  const registry = new Registry();
  const running = new Gauge({ name: 'vmigrate_migrations_running', help: 'Running migrations by lifecycle stage and kind', labelNames: ['stage', 'kind'], registers: [registry] });
  const closed = new Gauge({ name: 'vmigrate_migrations_closed', help: 'Migrations that have ended, by outcome (as Temporal keeps them: within its retention)', labelNames: ['status'], registers: [registry] });
  const queue = new Gauge({ name: 'vmigrate_admission_queue_length', help: 'Migrations waiting in Queued for a copy slot or their project’s concurrency', registers: [registry] });
  const downtime = new Gauge({ name: 'vmigrate_predicted_downtime_seconds', help: 'Each running warm migration’s predicted final sync at cutover (its expected downtime)', labelNames: ['migration'], registers: [registry] });

  const warm: string[] = [];
  for await (const w of client.workflow.list({ query: `${base} AND ExecutionStatus = 'Running'` })) {
    const stage = w.searchAttributes[MigrationState.name]?.[0];
    const kind = w.searchAttributes[MigrationKind.name]?.[0] ?? (w.type === 'warmMigration' ? 'warm' : 'cold');
    running.inc({ stage: typeof stage === 'string' ? stage : 'unknown', kind: String(kind) });
    if (w.type === 'warmMigration' && warm.length < FORECASTS_PER_SCRAPE) warm.push(w.workflowId);
  }
  for (const [status, value] of [['completed', 'Completed'], ['failed', 'Failed'], ['cancelled', 'Canceled'], ['terminated', 'Terminated'], ['timed_out', 'TimedOut']] as const) {
    closed.set({ status }, (await client.workflow.count(`${base} AND ExecutionStatus = '${value}'`)).count);
  }
  const view = await withTimeout(client.workflow.getHandle(admissionWorkflowId(taskQueue)).query(admissionQueueQuery));
  queue.set(view?.queue.length ?? 0);
  await Promise.all(
    warm.map(async (id) => {
      const state = await withTimeout(client.workflow.getHandle(id).query(warmMigrationStateQuery));
      const ms = state?.forecast?.predictedFinalSyncMs;
      if (ms !== undefined) downtime.set({ migration: id }, ms / 1000);
    }),
  );
  const merged = Registry.merge([processRegistry, registry]);
  return { contentType: merged.contentType, text: await merged.metrics() };
}
