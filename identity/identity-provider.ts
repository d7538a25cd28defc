/**
 * Who is calling the API. Every route runs with a Principal resolved from the caller's bearer token by one of the
 * configured identity backends (static tokens, or Keystone); routes check its role and scope what it sees to its
 * projects.
 */

/** OpenStack's default roles, lowest first: a reader looks, a member acts, an admin also administers. */
export const ROLES = ['reader', 'member', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** The user's name as shown in audit trails and events (e.g. "alice"). */
  user: string;
  /** Stable id of the user where the backend has one (Keystone's user id). */
  userId?: string;
  /** Projects the caller may see and act in; `'*'` (static admin tokens only) means every project. */
  projects: string[] | '*';
  role: Role;
  /** Which backend vouched for the caller. */
  via: 'static' | 'keystone';
  /** When the credential stops being valid (ms since epoch), if it does. */
  expiresAt?: number;
}

export interface IdentityProvider {
  /** The caller behind `token`, or undefined when the token is unknown, expired or revoked. Never logs the token. */
  authenticate(token: string): Promise<Principal | undefined>;
}

/** Raised when the identity backend itself cannot answer (Keystone down): the API answers 503, not 401. */
export class IdentityUnavailableError extends Error {
  override name = 'IdentityUnavailableError';
}

export function hasRole(p: Principal, needed: Role): boolean {
  return ROLES.indexOf(p.role) >= ROLES.indexOf(needed);
}

export function canSeeProject(p: Principal, project: string): boolean {
  return p.projects === '*' || p.projects.includes(project);
}
