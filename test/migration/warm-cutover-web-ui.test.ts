/**
 * An operator cuts a warm migration over from the Temporal Web UI, for real: the dev server's UI in Debian's
 * headless Chromium (playwright-core), the workflow found in the list, "Send a Signal" → `cutover` picked from the
 * definitions the worker publishes (with their descriptions) → JSON input → the migration completes.
 */
import { readWorkflowRecord } from '../../api/workflow-history';
import { migrationEvents } from '../../api/migration-view';
import { sha256File } from '../../tools/disk-image';
import type { WarmMigrationResult } from '../../workflows/warm-migration';
import { randomWrites, seededRandom } from '../harness/guest-writer';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { signalFromWebUi, testTemporalUiUrl } from '../harness/temporal-web-ui';
import { liveDiskFile, startWarmMigration, waitForWarmState } from '../harness/warm-migration';

const MiB = 1024 * 1024;
const DISK = 32 * MiB;
// With an external server (TEMPORAL_ADDRESS) the UI URL must be given too (VMIGRATE_TEST_TEMPORAL_UI_URL).
const uiUrl = testTemporalUiUrl();
const uiTest = uiUrl ? it : it.skip;

describe('warm migration cut over from the Temporal Web UI', () => {
  let env: MigrationEnv;

  beforeAll(async () => {
    env = await createMigrationEnv(
      'warm-ui',
      { vms: [{ name: 'ui01', guestId: 'debian11_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOn', disks: [{ capacityMiB: DISK / MiB }], nics: [] }] },
      { diskImages: { ui01: DISK } },
    );
    await env.startWorker();
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  uiTest('the cutover signal sent from the UI completes the migration, recording the operator', async () => {
    const id = `mig-ui-${Date.now().toString(36)}`;
    const handle = await startWarmMigration(env, { id, vm: 'ui01', warm: { syncIntervalSeconds: 2 } });
    await waitForWarmState(env, id, (s) => s.stage === 'Ready');
    await randomWrites(liveDiskFile(env, 0), DISK, seededRandom(31), 16);

    await signalFromWebUi({
      uiUrl: uiUrl!,
      namespace: 'default',
      workflowId: id,
      signalName: 'cutover',
      input: { actor: 'ui-operator' },
      // Picked from the dropdown: proves the handler's description reaches the UI.
      signalNameFrom: 'list',
      timeoutMs: 90_000,
    });
    const result = (await handle.result()) as WarmMigrationResult;
    expect(result.cutover).toMatchObject({ actor: 'ui-operator', via: 'signal' });
    expect(await sha256File(env.target.volumePath('proj-warm', `${id}-disk0`))).toBe(await sha256File(liveDiskFile(env, 0)));

    const events = migrationEvents(await readWorkflowRecord(env.client, id));
    const cutover = events.find((e) => e.name === 'cutover.requested')!;
    expect(cutover.data).toMatchObject({ via: 'signal', request: { actor: 'ui-operator' } });
  }, 240_000);
});
