import { z } from 'zod';
import { ROLES } from './identity-provider';

/**
 * How the API knows its callers. `static` (the default): bearer tokens kept only as SHA-256 hashes, each naming a
 * user, its projects and a role. `keystone`: the caller's own Keystone token, validated against Keystone v3.
 */

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the token, 64 lowercase hex digits');
const projectName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be a project name');

export const staticTokenSchema = z
  .object({
    sha256: sha256Hex,
    user: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be a user name'),
    /** Project names, or ["*"] for every project. */
    projects: z.array(z.union([projectName, z.literal('*')])).min(1),
    role: z.enum(ROLES),
    /** Optional expiry (ISO 8601). */
    expiresAt: z.string().datetime({ offset: true }).optional(),
  })
  .strict();

const staticIdentity = z.object({ backend: z.literal('static'), tokens: z.array(staticTokenSchema).default([]) }).strict();

const keystoneIdentity = z
  .object({
    backend: z.literal('keystone'),
    /** Keystone v3, e.g. https://keystone.example:5000/v3 */
    authUrl: z.string().url(),
    /** Accept a self-signed certificate (labs only). */
    insecure: z.boolean().default(false),
    /** Longest a validated token is trusted without asking Keystone again (it is never trusted past its expiry). */
    cacheSeconds: z.number().int().min(0).max(3600).default(300),
    /**
     * The domain (name or id) of the projects migrations name, as the targets' `projectDomain`: project names are
     * unique only within a domain, so a token scoped to a project of another domain sees no migrations.
     */
    projectDomain: z.string().min(1).default('Default'),
  })
  .strict();

export const identityConfigSchema = z.discriminatedUnion('backend', [staticIdentity, keystoneIdentity]);
export type IdentityConfig = z.infer<typeof identityConfigSchema>;
export type StaticIdentityConfig = z.infer<typeof staticIdentity>;
export type StaticTokenConfig = z.infer<typeof staticTokenSchema>;
export type KeystoneIdentityConfig = z.infer<typeof keystoneIdentity>;
