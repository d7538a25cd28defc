import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What lets an enrolled agent's connections into the gateway: the API signs it at enrollment, a worker's gateway
 * checks it with the same key (configured on both, like any credential, never in workflow input). It names the
 * machine, its migration and the agent's run (one boot), and expires.
 */
export interface AgentSessionClaims {
  machineId: string;
  migrationId: string;
  /** The agent's run (a fresh id each boot): connections of another run are refused. */
  runId: string;
  /** Expiry, ms since the epoch. */
  exp: number;
}

export class SessionTokenError extends Error {
  override name = 'SessionTokenError';
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export function signSessionToken(claims: AgentSessionClaims, key: Buffer): string {
  const body = b64(JSON.stringify(claims));
  return `${body}.${b64(createHmac('sha256', key).update(body).digest())}`;
}

export function verifySessionToken(token: string, key: Buffer, now = Date.now()): AgentSessionClaims {
  const [body, mac, extra] = token.split('.');
  if (!body || !mac || extra !== undefined) throw new SessionTokenError('malformed session token');
  const want = createHmac('sha256', key).update(body).digest();
  const got = Buffer.from(mac, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new SessionTokenError('session token signature does not match');
  let claims: AgentSessionClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new SessionTokenError('malformed session token');
  }
  if (typeof claims.exp !== 'number' || claims.exp < now) throw new SessionTokenError('session token expired: the agent enrolls again');
  return claims;
}
