/**
 * N workers pulling items from one async producer. The producer is called one at a time (it is stateful); the first
 * failure aborts `stop` so the other workers' reads end promptly, and the pool rejects with that first failure once
 * every worker has settled, so no write is still running when the caller moves on (e.g. closes the target).
 */
export async function runLanes<T>(
  lanes: number,
  produce: () => Promise<T | undefined>,
  work: (item: T) => Promise<void>,
  stop: AbortController,
): Promise<void> {
  let producing: Promise<unknown> = Promise.resolve();
  const nextItem = (): Promise<T | undefined> => {
    const item = producing.then(() => (stop.signal.aborted ? undefined : produce()));
    producing = item.catch(() => undefined);
    return item;
  };
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    try {
      for (let item = await nextItem(); item !== undefined; item = await nextItem()) await work(item);
    } catch (error) {
      if (!failure) failure = { error: stop.signal.aborted ? stop.signal.reason : error };
      if (!stop.signal.aborted) stop.abort(error);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
  if (failure) throw failure.error;
  if (stop.signal.aborted) throw stop.signal.reason;
}
