import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { connectClient, connectNative, uniqueTaskQueue } from './temporal';
import { signalFromWebUi, testTemporalUiUrl } from './temporal-web-ui';
import type { webUiSignalProbe } from './web-ui-probe-workflow';

// The real Web UI of the jest run's dev server, driven in Debian's headless Chromium. With an external server
// (TEMPORAL_ADDRESS) the test needs VMIGRATE_TEST_TEMPORAL_UI_URL too, and is skipped without it.
const uiUrl = testTemporalUiUrl();
const uiTest = uiUrl ? test : test.skip;

uiTest('a Signal sent through the Temporal Web UI reaches the workflow with its JSON input', async () => {
  const taskQueue = uniqueTaskQueue('web-ui');
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('./web-ui-probe-workflow'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m) },
  });
  const native = await connectNative();
  const { client, connection } = await connectClient();
  const worker = await Worker.create({ connection: native, taskQueue, workflowBundle });
  try {
    await worker.runUntil(async () => {
      const workflowId = `${taskQueue}-probe`;
      const handle = await client.workflow.start<typeof webUiSignalProbe>('webUiSignalProbe', { taskQueue, workflowId });
      // The UI lists Signal definitions only once the worker has answered the metadata query: make sure it can.
      await handle.query('__temporal_workflow_metadata');
      const started = Date.now();
      const steps: string[] = [];
      await signalFromWebUi({
        uiUrl: uiUrl!,
        namespace: 'default',
        workflowId,
        signalName: 'cutover',
        input: { actor: 'ui-operator' },
        // The test wants the dropdown path (definitions from the metadata query, with descriptions) to work.
        signalNameFrom: 'list',
        timeoutMs: 60_000,
        onStep: (step, ms) => steps.push(`${ms} ms ${step}`),
      });
      const result = await handle.result();
      console.log(`Web UI signal round-trip: ${Date.now() - started} ms\n${steps.join('\n')}`);
      expect(result).toEqual({ cutover: { actor: 'ui-operator' } });
      const history = await handle.fetchHistory();
      const signaled = history.events?.filter((e) => e.workflowExecutionSignaledEventAttributes) ?? [];
      expect(signaled.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName)).toEqual(['cutover']);
    });
  } finally {
    await connection.close();
    await native.close();
  }
});
