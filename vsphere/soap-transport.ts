/**
 * HTTP transport for vim25 SOAP: POSTs envelopes with axios, keeps the
 * `vmware_soap_session` cookie, and turns every failure into a typed VimError.
 */
import https from 'node:https';
import axios, { AxiosInstance, AxiosResponse } from 'axios';
import { envelope } from './soap-envelope';
import { parseSoapReply, XNode } from './soap-reply';
import { faultError, VimConnectionError, VimError, VimHttpError } from './vim-faults';

export const SESSION_COOKIE = 'vmware_soap_session';

/** Socket errors worth retrying: the server may be back or reachable later. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'EAI_AGAIN', 'ENOTFOUND', 'ERR_SOCKET_CONNECTION_TIMEOUT', 'ERR_NETWORK', 'ETIMEOUT',
]);

export interface SoapTransportOptions {
  /** SDK endpoint, e.g. https://vc.example.com/sdk */
  url: string;
  insecure?: boolean;
  timeoutMs?: number;
  /** Trust these CA(s) (PEM) instead of the system's; with `pinned`, the server's own certificate, whatever its names. */
  ca?: string;
  pinned?: boolean;
}

/** Removes user info from a URL so it can appear in messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Normalises a user-given vCenter URL to its SOAP endpoint (…/sdk). */
export function sdkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new VimError("invalid vCenter URL (expected an absolute https:// URL)", false);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new VimError(`invalid vCenter URL scheme: ${u.protocol}`, false);
  u.username = '';
  u.password = '';
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/sdk';
  return u.toString();
}

export class SoapTransport {
  readonly url: string;
  private readonly http: AxiosInstance;
  private cookie = '';
  /** Sent as SOAPAction; a real vCenter picks the API version from it (vcsim ignores it). */
  apiVersion = '6.5';

  constructor(opts: SoapTransportOptions) {
    this.url = sdkUrl(opts.url);
    this.http = axios.create({
      timeout: opts.timeoutMs ?? 60_000,
      httpsAgent: new https.Agent({
        keepAlive: true,
        rejectUnauthorized: !opts.insecure || !!opts.pinned,
        ...(opts.ca ? { ca: opts.ca } : {}),
        // The chain is still checked (against the pinned certificate only); its names are not.
        ...(opts.pinned ? { checkServerIdentity: () => undefined } : {}),
      }),
      // Faults come as HTTP 500 with a SOAP body: inspect every status ourselves.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: (d: unknown) => d,
      maxRedirects: 0,
      proxy: false,
    });
  }

  /** Raw value of the session cookie ('' before login / after logout). */
  get sessionCookie(): string {
    return this.cookie;
  }

  clearSession(): void {
    this.cookie = '';
  }

  /** Invokes a vim25 method; returns the `<Method>Response` element. */
  async call(method: string, innerXml: string): Promise<XNode> {
    const response = await this.post(method, envelope(method, innerXml));
    this.captureCookie(response);
    const text = typeof response.data === 'string' ? response.data : String(response.data ?? '');
    let reply;
    try {
      reply = parseSoapReply(text);
    } catch {
      if (response.status >= 300) {
        throw new VimHttpError(`vSphere at ${safeUrl(this.url)} answered ${method} with HTTP ${response.status}`, response.status);
      }
      throw new VimError(`vSphere at ${safeUrl(this.url)} sent an unparseable reply to ${method}`, true);
    }
    if (reply.fault) {
      const type = reply.fault.faultType ?? 'SoapFault';
      throw faultError(type, `${method}: ${reply.fault.faultString || type}`, reply.fault.detail);
    }
    if (!reply.body) throw new VimError(`vSphere at ${safeUrl(this.url)} sent an empty reply to ${method}`, true);
    return reply.body;
  }

  private async post(method: string, body: string): Promise<AxiosResponse> {
    const headers: Record<string, string> = {
      'Content-Type': 'text/xml; charset=utf-8',
      SOAPAction: `urn:vim25/${this.apiVersion}`,
    };
    if (this.cookie) headers.Cookie = `${SESSION_COOKIE}=${this.cookie}`;
    try {
      return await this.http.post(this.url, body, { headers });
    } catch (err) {
      // Re-create the error from code + message only: the axios error holds
      // the request (for Login, the password) and must not reach logs.
      const e = err as { code?: string; message?: string };
      const code = e.code;
      const tls = /CERT|SELF_SIGNED|TLS|SSL/i.test(code ?? '') || /certificate/i.test(e.message ?? '');
      const hint = tls ? ' (certificate not trusted: use the insecure option for self-signed certificates)' : '';
      throw new VimConnectionError(
        `cannot reach vSphere at ${safeUrl(this.url)} for ${method}: ${code ?? 'error'} ${e.message ?? ''}`.trim() + hint,
        code,
        !tls && (code === undefined || TRANSIENT_CODES.has(code)),
      );
    }
  }

  private captureCookie(response: AxiosResponse): void {
    const setCookie = response.headers['set-cookie'];
    const list = Array.isArray(setCookie) ? setCookie : setCookie ? [String(setCookie)] : [];
    for (const line of list) {
      const first = line.split(';')[0];
      const eq = first.indexOf('=');
      if (eq > 0 && first.slice(0, eq).trim() === SESSION_COOKIE) {
        // Kept verbatim (a real vCenter quotes it) so it can be echoed back unchanged.
        this.cookie = first.slice(eq + 1).trim();
      }
    }
  }
}
