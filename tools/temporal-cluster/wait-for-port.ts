import net from 'node:net';

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects if `died()` or at the timeout. */
export function waitForPort(port: number, timeoutMs: number, died: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (died()) return reject(new Error(`${what} exited before listening on ${port}`));
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 300);
      });
    };
    attempt();
  });
}
