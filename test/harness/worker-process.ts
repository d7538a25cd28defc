import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../tools/temporal-dev-server';
import { testTemporalAddress } from './temporal';

/** A real worker process (workers/main.ts), so a test can SIGKILL it the way a crashed host dies. */
export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnWorker(env: { configFile: string; taskQueue: string; role?: string; hostId?: string; extraEnv?: Record<string, string> }): WorkerProcess {
  // `node --import tsx` keeps it one process: killing it kills the worker itself, not a wrapper.
  const bundle = process.env.VMIGRATE_TEST_WORKFLOW_BUNDLE;
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'workers', 'main.ts')], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: testTemporalAddress(),
      VMIGRATE_CONFIG: env.configFile,
      VMIGRATE_TASK_QUEUE: env.taskQueue,
      VMIGRATE_WORKER_ROLE: env.role ?? 'activities',
      ...(env.hostId ? { VMIGRATE_HOST_ID: env.hostId } : {}),
      // The run's workflow bundle, once a test file has made it: the worker need not bundle again.
      ...(bundle && existsSync(bundle) ? { VMIGRATE_WORKFLOW_BUNDLE: bundle } : {}),
      LOG_LEVEL: process.env.VMIGRATE_TEST_WORKER_LOG_LEVEL ?? 'warn',
      ...env.extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-30000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return {
    child,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
