/**
 * How a source's TLS certificate is trusted: the system's CAs (default), a CA file, the certificate's thumbprint
 * (what vCenter and ESXi show; SHA-1 or SHA-256), or not at all (`insecure`, labs only). A thumbprint pins the
 * server's certificate: it is fetched once, checked against the thumbprint before any request is sent, and then is
 * the only certificate trusted for that server — by the SOAP client and by nbdkit reading the datastore.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { VimError } from './vim-faults';

export interface SourceTrust {
  insecure?: boolean;
  /** PEM of the CA(s) to trust instead of the system's. */
  caPem?: string;
  /** The server certificate's thumbprint: hex, colons optional; 40 digits SHA-1, 64 SHA-256. */
  thumbprint?: string;
}

export function parseThumbprint(value: string): { algorithm: 'sha1' | 'sha256'; hex: string } {
  const hex = value.replace(/[:\s]/g, '').toLowerCase();
  if (/^[0-9a-f]{40}$/.test(hex)) return { algorithm: 'sha1', hex };
  if (/^[0-9a-f]{64}$/.test(hex)) return { algorithm: 'sha256', hex };
  throw new VimError(`the TLS thumbprint ${JSON.stringify(value)} is not a SHA-1 (40 hex digits) or SHA-256 (64) thumbprint`, false);
}

const colons = (hex: string) => hex.toUpperCase().match(/../g)!.join(':');

/** The server's certificate (PEM), once its thumbprint is the one configured; nothing is sent before the check. */
export async function pinnedCertificate(url: string, thumbprint: string, timeoutMs = 15_000): Promise<string> {
  const want = parseThumbprint(thumbprint);
  const u = new URL(url);
  const port = Number(u.port || 443);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const der = await new Promise<Buffer>((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: false, timeout: timeoutMs });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      if (!cert?.raw) reject(new VimError(`${u.host} presented no TLS certificate`, true));
      else resolve(cert.raw);
    });
    socket.once('timeout', () => socket.destroy(new VimError(`TLS connection to ${u.host} timed out`, true)));
    socket.once('error', (err) => reject(err instanceof VimError ? err : new VimError(`TLS connection to ${u.host} failed: ${err.message}`, true)));
  });
  const got = createHash(want.algorithm).update(der).digest('hex');
  if (got !== want.hex) {
    throw new VimError(
      `the TLS certificate of ${u.host} has ${want.algorithm.toUpperCase()} thumbprint ${colons(got)}, not the configured ${colons(want.hex)}; ` +
        'if the certificate was replaced on purpose, put its thumbprint in the source configuration',
      false,
    );
  }
  return new X509Certificate(der).toString();
}

/** What the HTTPS clients trust for a source, resolved before the first request. */
export interface ResolvedTrust {
  rejectUnauthorized: boolean;
  ca?: string;
  /** The pinned certificate is trusted for this server whatever names it carries (ESXi's often name localhost). */
  pinned: boolean;
}

export async function resolveTrust(url: string, trust: SourceTrust): Promise<ResolvedTrust> {
  if (trust.thumbprint) return { rejectUnauthorized: true, ca: await pinnedCertificate(url, trust.thumbprint), pinned: true };
  if (trust.caPem) return { rejectUnauthorized: !trust.insecure, ca: trust.caPem, pinned: false };
  return { rejectUnauthorized: !trust.insecure, pinned: false };
}
