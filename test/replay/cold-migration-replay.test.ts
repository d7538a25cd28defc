import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../harness/temporal';

/**
 * Determinism guard: every recorded history must replay against today's workflow code. A change to a released
 * workflow that would break these must go behind patched() (and a new history is recorded for the new path).
 */
describe('replay of recorded workflow histories', () => {
  const dir = path.join(__dirname, 'histories');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s replays without nondeterminism', async (file) => {
    // Files are the client's fetchHistory() output as JSON (scripts/record-history.ts); fromObject reads that form.
    const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file)).resolves.toBeUndefined();
  });
});
