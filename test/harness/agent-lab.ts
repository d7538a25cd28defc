import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The `agents` part of a test configuration: a self-signed certificate (openssl) for the agent endpoint and the
 * gateway, a session key file, free ports, and the address agents reach them at (127.0.0.1 for an agent on this
 * machine, 10.0.2.2 for one in qemu's user network). The gateway runs in the worker of this host.
 */
export async function agentsConfig(dir: string, reachAt: string, sessionLifetimeSeconds?: number): Promise<Record<string, unknown>> {
  const certFile = path.join(dir, 'agents.crt');
  const keyFile = path.join(dir, 'agents.key');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=vmigrate-agents', '-keyout', keyFile, '-out', certFile]);
  const sessionKeyFile = path.join(dir, 'agents.session-key');
  await writeFile(sessionKeyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const [enrollPort, gatewayPort] = [await freePort(), await freePort()];
  return {
    enrollment: { port: enrollPort, host: '0.0.0.0', url: `https://${reachAt}:${enrollPort}` },
    gateway: { port: gatewayPort, host: '0.0.0.0', address: `${reachAt}:${gatewayPort}`, hostId: os.hostname() },
    tls: { certFile, keyFile },
    sessionKey: { file: sessionKeyFile },
    ...(sessionLifetimeSeconds ? { sessionLifetimeSeconds } : {}),
  };
}
