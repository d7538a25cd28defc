import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readSecret } from '../../config/secret-ref';
import type { VmigrateConfig } from '../../config/vmigrate-config';

type AgentsConfig = NonNullable<VmigrateConfig['agents']>;

/** The certificate the agent endpoint and the gateway present, and its SHA-256 as the ISO pins it (hex, no colons). */
export function agentCertificate(agents: AgentsConfig): { cert: string; key: string; fingerprint: string } {
  const cert = readFileSync(agents.tls.certFile, 'utf8');
  const key = readFileSync(agents.tls.keyFile, 'utf8');
  return { cert, key, fingerprint: new X509Certificate(cert).fingerprint256.replace(/:/g, '').toLowerCase() };
}

/** The key session tokens are signed with (at least 32 bytes of secret). */
export function agentSessionKey(agents: AgentsConfig): Buffer {
  const key = Buffer.from(readSecret(agents.sessionKey, 'agents.sessionKey'), 'utf8');
  if (key.length < 32) throw new Error('agents.sessionKey must hold at least 32 bytes');
  return key;
}
