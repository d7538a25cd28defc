import { writeFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';

/**
 * Save a finished workflow's event history as JSON for the replay tests:
 *   TEMPORAL_ADDRESS=localhost:7233 npx tsx scripts/record-history.ts <workflowId> test/replay/histories/<name>.json
 */
async function main(): Promise<void> {
  const [workflowId, out] = process.argv.slice(2);
  if (!workflowId || !out) throw new Error('usage: record-history.ts <workflowId> <out.json>');
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const history = await new Client({ connection }).workflow.getHandle(workflowId).fetchHistory();
  await writeFile(out, JSON.stringify(history, null, 1));
  await connection.close();
  console.log(`wrote ${history.events?.length ?? 0} events to ${out}`);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
