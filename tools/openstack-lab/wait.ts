/** Readiness polling whose failures carry the tails of the services' logs. */
import { logTail, sleep, type Service } from './proc';

/** Waits until `url` answers with any HTTP status below 500. */
export async function waitHttp(service: Service, url: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(
    `${service.name} to answer on ${url}`,
    [service],
    async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      return res.status < 500;
    },
    timeoutMs,
  );
}

/** Polls `check` until true; fails with the tails of `services`' logs when one exits or time runs out. */
export async function waitFor(what: string, services: Service[], check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const dead = services.find((s) => s.exitCode() !== null);
    if (dead) throw new Error(`waiting for ${what}: ${dead.name} exited with ${dead.exitCode()}; ${dead.logFile}:\n${logTail(dead.logFile)}`);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const tails = services.map((s) => `--- ${s.logFile}:\n${logTail(s.logFile, 25)}`).join('\n');
      throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}\n${tails}`);
    }
    await sleep(500);
  }
}

