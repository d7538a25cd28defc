/** Submitting many VMs through the API and waiting for them, for the service benchmarks. */
import type { AxiosInstance } from 'axios';

/** One `POST /migrations` for several VMs (`body` without `vms`); the migration ids, or an error naming a refusal. */
export async function submitBatch(http: AxiosInstance, body: Record<string, unknown>, vms: string[]): Promise<string[]> {
  const res = await http.post('/migrations', { ...body, vms: vms.map((name) => ({ name })) });
  if (res.status !== 202) throw new Error(`submission answered ${res.status}: ${JSON.stringify(res.data)}`);
  return (res.data.migrations as Array<{ id?: string; problem?: unknown }>).map((m) => {
    if (!m.id) throw new Error(`a VM was refused: ${JSON.stringify(m.problem)}`);
    return m.id;
  });
}

/**
 * Polls `GET /migrations?state=` until `count` migrations are in that stage. `check` runs on each poll and may throw
 * to stop early (a failure elsewhere); `context` adds to the timeout's message (the worker's output).
 */
export async function waitForStage(
  http: AxiosInstance,
  stage: string,
  count: number,
  opts: { timeoutMs: number; pollMs: number; check?: () => Promise<void>; context?: () => string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const res = await http.get('/migrations', { params: { state: stage, limit: 1000 } });
    const have = res.data.migrations?.length ?? 0;
    if (have >= count) return;
    await opts.check?.();
    if (Date.now() > deadline) throw new Error(`only ${have} of ${count} migrations ${stage} after ${opts.timeoutMs / 1000} s${opts.context ? `; ${opts.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.pollMs));
  }
}
