import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type WorkflowBundle } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../workers/create-worker';
import { sdkLogLevel } from '../../workers/sdk-log-levels';

/** Address of the dev server the jest global setup started. */
export function testTemporalAddress(): string {
  const address = process.env.VMIGRATE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('no Temporal dev server: run the tests through jest (test/harness/global-setup.ts)');
  return address;
}

export function uniqueTaskQueue(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

export async function connectClient(): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: testTemporalAddress() });
  return { client: new Client({ connection }), connection };
}

let runtimeInstalled = false;
/** Keep the SDK's INFO chatter out of test output (the Runtime is process-wide and can be installed once). */
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) => {
        if (sdkLogLevel(entry.level, entry.message) === 'DEBUG') return;
        const meta = entry.meta ? ` ${JSON.stringify(entry.meta)}` : '';
        process.stderr.write(`${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} [${entry.level}] ${entry.message}${meta}\n`);
      }),
    });
  } catch {
    // Already installed by an earlier test file in this process.
  }
}

export async function connectNative(): Promise<NativeConnection> {
  quietRuntime();
  return NativeConnection.connect({ address: testTemporalAddress() });
}

let bundle: Promise<WorkflowBundle> | undefined;
/**
 * Bundling takes seconds: one bundle per jest run (VMIGRATE_TEST_WORKFLOW_BUNDLE, a file the global setup names; the
 * sources cannot change during a run), shared by every worker the test files start, spawned ones included.
 */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= (async () => {
    const file = process.env.VMIGRATE_TEST_WORKFLOW_BUNDLE;
    if (file && existsSync(file)) return { code: await readFile(file, 'utf8') };
    const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
    if (file) {
      await writeFile(`${file}.${process.pid}.tmp`, code);
      await rename(`${file}.${process.pid}.tmp`, file);
    }
    return { code };
  })();
  return bundle;
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error(message: string, meta?: Record<string, unknown>) {
    console.error(message, meta);
  },
};
