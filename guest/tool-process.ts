import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Starts a guest tool (virt-v2v-in-place, virt-inspector, qemu) so that nothing it starts outlives it or the worker.
 * virt-v2v starts qemu-nbd, nbdkit and a qemu appliance; killed outright (a crash, an OOM kill, our own SIGKILL), it
 * leaves qemu-nbd running with the disk open and our output pipes held, forever. So, as root, the tool runs as the
 * child of the first process (a shell) of its own PID namespace (`unshare --pid --fork --kill-child`): when that ends
 * the kernel kills every process in the namespace. The shell is there to pass the tool's exit status on: unshare
 * 2.38 exits 1 whatever signal killed its child ("sigprocmask unblock failed"), a shell reports 128+signal.
 * Otherwise the tool leads its own process group, which we kill whole when it exits.
 * Either way `setpriv --pdeathsig SIGKILL` ties it to the worker: a worker that dies takes its tools with it.
 */
export interface ToolProcess {
  child: ChildProcess;
  /** Signal the tool and everything it started. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves when the tool has exited and its helpers are gone (its output pipes closed). */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const inOwnPidNamespace = process.getuid?.() === 0 && process.env.VMIGRATE_TOOL_PIDNS !== '0';

export function spawnTool(command: string, args: string[], opts: SpawnOptions): ToolProcess {
  const wrapper = inOwnPidNamespace ? ['unshare', '--pid', '--fork', '--kill-child=SIGKILL', 'sh', '-c', '"$0" "$@"', command] : [command];
  const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', ...wrapper, ...args], { ...opts, detached: true });
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      /* already gone */
    }
  };
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      exit = inOwnPidNamespace && code !== null && code > 128 ? { code: null, signal: signalName(code - 128) } : { code, signal };
      // Helpers still alive hold the pipes open; they are worthless without the tool.
      killGroup('SIGKILL');
      // Never hang on a pipe some stray descendant keeps open: give the output 10 s to drain, then stop waiting.
      setTimeout(() => {
        for (const s of child.stdio) s?.destroy();
        resolve(exit!);
      }, 10_000).unref();
    });
    child.once('close', () => resolve(exit ?? { code: child.exitCode, signal: child.signalCode }));
  });
  return { child, kill: (signal = 'SIGTERM') => killGroup(signal), ended };
}

function signalName(n: number): NodeJS.Signals | null {
  const found = Object.entries(constants.signals).find(([, v]) => v === n);
  return (found?.[0] as NodeJS.Signals | undefined) ?? null;
}
