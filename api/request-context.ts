import type { NextFunction, Request, Response } from 'express';
import { IdentityUnavailableError, type IdentityProvider, type Principal } from '../identity/identity-provider';
import { HttpProblem } from './problem';

/**
 * The request context: who is calling, resolved once per request from the bearer token (`Authorization: Bearer`
 * or OpenStack's `X-Auth-Token`) by the configured identity backend, and kept in `res.locals.principal` for the
 * routes. The token itself goes no further than the backend.
 */

const MAX_TOKEN_LENGTH = 8192;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export function bearerToken(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length) {
    const m = BEARER.exec(auth);
    if (!m) throw new HttpProblem('unauthenticated', 'the Authorization header must be "Bearer <token>"', {}, { 'WWW-Authenticate': 'Bearer error="invalid_request"' });
    return m[1];
  }
  const x = req.headers['x-auth-token'];
  if (typeof x === 'string' && x.length) return x.trim();
  return undefined;
}

/** Middleware: 401 without a valid token, 503 when the identity backend cannot answer. */
export function requestContext(identity: IdentityProvider) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const token = bearerToken(req);
      if (!token) throw new HttpProblem('unauthenticated', 'send a token: "Authorization: Bearer <token>" or "X-Auth-Token: <token>"', {}, { 'WWW-Authenticate': 'Bearer' });
      if (token.length > MAX_TOKEN_LENGTH) throw new HttpProblem('unauthenticated', 'the token is not valid', {}, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      let principal: Principal | undefined;
      try {
        principal = await identity.authenticate(token);
      } catch (err) {
        if (err instanceof IdentityUnavailableError) throw new HttpProblem('service-unavailable', `cannot check the token: ${err.message}`, {}, { 'Retry-After': '5' });
        throw err;
      }
      if (!principal) throw new HttpProblem('unauthenticated', 'the token is not valid, has expired or was revoked', {}, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      res.locals.principal = principal;
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw new Error('route reached without a request context');
  return p;
}
