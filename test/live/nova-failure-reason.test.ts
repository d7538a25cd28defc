import { awaitFailureReason } from '../../live/nova-failure-reason';

/** Nova's instance action as it is read over time: no reason for the first reads, then one. */
function actionSayingWhyAfter(reads: number, why: string) {
  let n = 0;
  return { failureOf: async () => (++n > reads ? why : undefined), reads: () => n };
}

describe('awaitFailureReason', () => {
  it("waits for the instance action to record why Nova's migration failed", async () => {
    const nova = actionSayingWhyAfter(3, 'MigrationError: Timed out during operation');
    const slept: number[] = [];
    expect(await awaitFailureReason(nova, 'srv', 'req-1', async (ms) => void slept.push(ms))).toBe('MigrationError: Timed out during operation');
    expect([nova.reads(), slept.length]).toEqual([4, 3]);
  });

  it('gives up after the wait: a failure without a recorded reason is still reported', async () => {
    const nova = actionSayingWhyAfter(Infinity, 'never');
    const slept: number[] = [];
    expect(await awaitFailureReason(nova, 'srv', 'req-1', async (ms) => void slept.push(ms), 5000)).toBeUndefined();
    expect(slept.reduce((a, b) => a + b, 0)).toBe(5000);
  });

  it('without a request id there is no action to read', async () => {
    const nova = actionSayingWhyAfter(0, 'unused');
    expect(await awaitFailureReason(nova, 'srv', undefined, async () => undefined)).toBeUndefined();
    expect(nova.reads()).toBe(0);
  });
});
