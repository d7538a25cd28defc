import { readWorkflowRecord } from '../../api/workflow-history';
import type { MigrationEnv } from './migration-env';

/**
 * For a failure's message: where a workflow is — its last history events, its pending activities (state, attempt,
 * which worker took each and when, the last failure), and its copies. What a stalled migration needs to be understood
 * when the run's log is all there is.
 */
export async function whereItIs(env: MigrationEnv, id: string): Promise<string> {
  const handle = env.client.workflow.getHandle(id);
  const { raw } = await handle.describe();
  const events = ((await handle.fetchHistory()).events ?? []).slice(-6).map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')));
  const pending = (raw.pendingActivities ?? []).map((a) => {
    const started = a.lastStartedTime?.seconds ? ` started ${new Date(Number(a.lastStartedTime.seconds) * 1000).toISOString()}` : '';
    const by = a.lastWorkerIdentity ? ` by ${a.lastWorkerIdentity}` : '';
    return `${a.activityType?.name} ${a.state} attempt ${a.attempt}${started}${by} ${a.lastFailure?.message ?? ''}`.trim();
  });
  const rec = await readWorkflowRecord(env.client, id);
  const copies = rec.activities.filter((a) => a.type === 'exportDisk' || a.type === 'syncDisk').map((a) => `${a.type} ${a.scheduledAt}→${a.startedAt}→${a.endedAt} attempt ${a.attempt}`);
  return `${id}: last events ${events.join(', ')}; pending ${pending.join(' | ') || 'none'}; copies ${copies.slice(-4).join(' | ')}; now ${new Date().toISOString()}`;
}
