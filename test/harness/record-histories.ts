import { writeFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';

/**
 * Saves every run of a workflow (oldest first, following continue-as-new) as `<prefix>-run<N>.json` for the replay
 * tests. Used when a test runs with VMIGRATE_RECORD_HISTORY_DIR set; each run's history replays on its own.
 */
export async function recordRunHistories(client: Client, workflowId: string, prefix: string): Promise<string[]> {
  const histories = [];
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    histories.unshift(history);
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  const files = histories.map((_, i) => `${prefix}-run${i + 1}.json`);
  await Promise.all(histories.map((h, i) => writeFile(files[i], JSON.stringify(h, null, 1))));
  return files;
}
