import { CancellationScope, isCancellation } from '@temporalio/workflow';

/**
 * Runs `work` for every item in parallel inside one cancellation scope. The first failure cancels the others, and
 * this settles only once all of them have stopped, so nothing still touches the source when the caller reacts.
 * It rejects with the failure that caused the cancellations, not with one of the cancellations it caused.
 */
export async function allOrCancel<I, T>(items: I[], work: (item: I, index: number) => Promise<T>): Promise<T[]> {
  const scope = new CancellationScope();
  const outcomes = await scope.run(() =>
    Promise.allSettled(
      items.map(async (item, index) => {
        try {
          return await work(item, index);
        } catch (err) {
          scope.cancel();
          throw err;
        }
      }),
    ),
  );
  const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason);
  if (failures.length) throw failures.find((f) => !isCancellation(f)) ?? failures[0];
  return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value);
}
