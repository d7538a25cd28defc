import { CancellationScope, isCancellation } from '@temporalio/workflow';

/**
 * Runs `work` for every item inside one cancellation scope, at most `concurrency` at a time (default: all at once),
 * starting them in order. The first failure cancels the running ones and starts no more, and this settles only once
 * all of them have stopped, so nothing still touches the source when the caller reacts. It rejects with the failure
 * that caused the cancellations, not with one of the cancellations it caused.
 */
export async function allOrCancel<I, T>(items: I[], work: (item: I, index: number) => Promise<T>, concurrency = items.length): Promise<T[]> {
  const scope = new CancellationScope();
  const outcomes: PromiseSettledResult<T>[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        outcomes[index] = { status: 'fulfilled', value: await work(items[index], index) };
      } catch (reason) {
        outcomes[index] = { status: 'rejected', reason };
        failed = true;
        scope.cancel();
      }
    }
  };
  await scope.run(() => Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane)));
  const failures = outcomes.filter((o): o is PromiseRejectedResult => o?.status === 'rejected').map((o) => o.reason);
  if (failures.length) throw failures.find((f) => !isCancellation(f)) ?? failures[0];
  return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value);
}
