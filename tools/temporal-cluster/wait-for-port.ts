import net from 'node:net';

/** Whether something accepts TCP connections on 127.0.0.1:`port` right now. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects if `died()` or at the timeout. */
export async function waitForPort(port: number, timeoutMs: number, died: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (died()) throw new Error(`${what} exited before listening on ${port}`);
    if (await portAnswers(port)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
