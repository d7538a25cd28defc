import { condition, defineSignal, setHandler } from '@temporalio/workflow';

/**
 * A tiny workflow for the Web UI helper's own test (test/harness/temporal-web-ui.test.ts): it waits for a `cutover`
 * Signal and returns that Signal's input. The handler's `description` is what makes the UI list the Signal in its
 * dropdown (the UI reads signal definitions from the `__temporal_workflow_metadata` query).
 */
export const probeCutoverSignal = defineSignal<[unknown]>('cutover');

export async function webUiSignalProbe(): Promise<{ cutover: unknown }> {
  let received: { input: unknown } | undefined;
  setHandler(
    probeCutoverSignal,
    (input) => {
      received = { input };
    },
    { description: 'Cut the probe over (sent from the Web UI by the test)' },
  );
  await condition(() => received !== undefined);
  return { cutover: received!.input };
}
