import type { Client } from '@temporalio/client';
import type { ThroughputSample } from '../preflight/runtime-estimate';
import { migrationEvents, migrationStatus } from './migration-view';
import { readWorkflowRecord } from './workflow-history';

/** How many recent completed migrations the rate comes from, and how long one reading of them is reused. */
const SAMPLES = 10;
const REUSE_MS = 60_000;

/** A sample from a completed cold migration's history: its Write Volume stage and everything else after admission. */
export function sampleOf(rec: Awaited<ReturnType<typeof readWorkflowRecord>>): ThroughputSample | undefined {
  if (rec.status !== 'COMPLETED' || rec.closedAt === undefined) return undefined;
  const events = migrationEvents(rec);
  const at = (name: string) => {
    const e = events.find((x) => x.name === name);
    return e ? Date.parse(e.time) : undefined;
  };
  const writeStarted = at('write.started');
  const copyEnded = at('guest_fixes.started') ?? at('finalize.completed');
  const admitted = at('migration.admitted') ?? rec.startedAt;
  if (writeStarted === undefined || copyEnded === undefined || copyEnded <= writeStarted) return undefined;
  const status = migrationStatus(rec);
  const capacityBytes = status.disks.reduce((n, d) => n + d.capacityBytes, 0);
  const copySeconds = (copyEnded - writeStarted) / 1000;
  return { migrationId: rec.workflowId, capacityBytes, copySeconds, otherSeconds: Math.max(0, (rec.closedAt - admitted) / 1000 - copySeconds), completedAt: new Date(rec.closedAt).toISOString() };
}

/** The deployment's measured copy rate, read from its recent completed cold migrations (all projects: a rate, no details). */
export class MeasuredThroughput {
  private cached?: { at: number; samples: ThroughputSample[] };

  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  async samples(): Promise<ThroughputSample[]> {
    if (this.cached && Date.now() - this.cached.at < REUSE_MS) return this.cached.samples;
    const samples: ThroughputSample[] = [];
    // The task queue is the deployment's own configuration, never user input; checked anyway before it enters the query.
    if (!/^[A-Za-z0-9._@-]+$/.test(this.taskQueue)) throw new Error(`task queue ${JSON.stringify(this.taskQueue)} cannot be put into a visibility query`);
    const query = `TaskQueue = '${this.taskQueue}' AND WorkflowType = 'coldMigration' AND ExecutionStatus = 'Completed'`;
    for await (const w of this.client.workflow.list({ query, pageSize: SAMPLES })) {
      const rec = await readWorkflowRecord(this.client, w.workflowId).catch(() => undefined);
      const sample = rec && sampleOf(rec);
      if (sample) samples.push(sample);
      if (samples.length >= SAMPLES) break;
    }
    // No history yet is not remembered: the first migration to complete gives the estimate at once.
    if (samples.length) this.cached = { at: Date.now(), samples };
    return samples;
  }
}
