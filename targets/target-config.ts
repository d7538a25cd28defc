import { z } from 'zod';

/**
 * Configured targets, by name. Credentials are referenced (a file or an environment variable), never inlined, and
 * resolved only on workers when a provider is first used: the API validates requests from the names alone.
 */

const secretRef = z
  .object({ file: z.string().min(1).optional(), env: z.string().min(1).optional() })
  .strict()
  .refine((s) => !!s.file !== !!s.env, { message: 'set exactly one of file or env' });

const flavor = z.object({ name: z.string().min(1), vcpus: z.number().int().min(1), ramMB: z.number().int().min(1) }).strict();

const localTarget = z
  .object({
    driver: z.literal('local'),
    /** Where the local stand-in keeps volumes and instances. */
    dataDir: z.string().default('data'),
    /** Its flavor catalog (default: OpenStack's classic m1.small … m1.xlarge). */
    flavors: z.array(flavor).min(1).optional(),
    /**
     * The data directory is storage every worker mounts at the same path (NFS, CephFS). Otherwise the volumes are
     * files on one worker's host, and each migration keeps its volume work on the host that made them.
     */
    sharedStorage: z.boolean().default(false),
  })
  .strict();

const passwordAuth = z
  .object({
    method: z.literal('password'),
    username: z.string().min(1),
    userDomain: z.string().min(1).default('Default'),
    password: secretRef,
    /** Where migration projects are looked up by name. */
    projectDomain: z.string().min(1).default('Default'),
  })
  .strict();

const applicationCredentialAuth = z
  .object({
    method: z.literal('application-credential'),
    id: z.string().min(1),
    secret: secretRef,
  })
  .strict();

const openstackTarget = z
  .object({
    driver: z.literal('openstack'),
    /** Keystone v3, e.g. https://keystone.example:5000/v3 */
    authUrl: z.string().url(),
    auth: z.discriminatedUnion('method', [passwordAuth, applicationCredentialAuth]),
    region: z.string().min(1).optional(),
    interface: z.enum(['public', 'internal', 'admin']).default('public'),
    /** Accept a self-signed certificate (labs only). */
    insecure: z.boolean().default(false),
    /**
     * How a worker reaches a volume's bytes. cinder-attachment: Cinder's attachments API with this host's connector,
     * then the volume's transport (NFS today) from this host. attach-to-worker: the worker is a server in the cloud
     * and Nova attaches the volume to it (`workerServerId`).
     */
    volumeAccess: z
      .discriminatedUnion('mode', [
        z.object({ mode: z.literal('cinder-attachment'), mountBase: z.string().optional() }).strict(),
        z.object({ mode: z.literal('attach-to-worker'), workerServerId: z.string().min(1) }).strict(),
      ])
      .default({ mode: 'cinder-attachment' }),
    /** How long to wait for a volume, port or server to settle (seconds). */
    waitTimeoutSeconds: z.number().int().min(10).max(3600).default(600),
    /**
     * Operations on the cloud's hosts (live migration, host drain) need what Nova's default policy gives the admin
     * role only: an admin's credentials, scoped to `project`. Absent, those operations are refused with a message.
     */
    hostOperations: z.object({ auth: z.discriminatedUnion('method', [passwordAuth, applicationCredentialAuth]), project: z.string().min(1) }).strict().optional(),
  })
  .strict();

const libvirtHost = z
  .object({
    /** The host's name as libvirt reports it (virsh hostname): what a migration names as its destination. */
    name: z.string().min(1),
    /**
     * How workers reach its libvirtd: qemu+ssh://root@kvm1/system, qemu+tls://kvm1/system, qemu:///system on the
     * host itself. Credentials (ssh keys, TLS certificates) live on the workers, never in this file.
     */
    uri: z.string().regex(/^qemu(\+(ssh|tls|tcp|unix|libssh2|libssh))?:\/\/[^\s]*$/, 'must be a qemu libvirt URI such as qemu+ssh://root@kvm1/system'),
    /** The host's address on the migration network: incoming live migrations listen there (default: its hostname). */
    migrationAddress: z.string().min(1).optional(),
  })
  .strict();

const libvirtNetwork = z.union([z.object({ bridge: z.string().min(1) }).strict(), z.object({ network: z.string().min(1) }).strict()]);

const libvirtTarget = z
  .object({
    driver: z.literal('libvirt'),
    /** KVM hosts managed by libvirt; each has the storage pool and the bridges or networks named below. */
    hosts: z.array(libvirtHost).min(1),
    /** The storage pool volumes are made in, on every host (a dir pool: volumes are files). */
    storagePool: z.string().min(1).default('default'),
    /**
     * The pool is storage every host mounts at the same path (NFS, CephFS, GlusterFS): a live migration moves memory
     * only. Otherwise each host has its own disks, and moving an instance copies them too (block migration).
     */
    sharedStorage: z.boolean().default(false),
    /** Target network names of a migration's network map, as this target's bridges or libvirt networks. */
    networks: z.record(z.string(), libvirtNetwork).default({}),
    /** Its flavor catalog for migrated instances (default: OpenStack's classic m1.small … m1.xlarge). */
    flavors: z.array(flavor).min(1).optional(),
    /**
     * The host migrated VMs are defined on (default: the first). Their volumes are made in its pool, which the
     * migration's worker must reach at the pool's path: a worker running on that host, or the pool shared.
     */
    landingHost: z.string().min(1).optional(),
    /**
     * How a live migration between its hosts may be helped to converge (both off by default, as in Nova's libvirt
     * driver). permitPostCopy: a migration force-completed past its convergence limit switches to post-copy — the guest
     * runs on the destination at once and fetches the pages it still needs from the source (a network failure then
     * loses the guest). permitAutoConverge: QEMU throttles the guest's vCPUs while memory is dirtied faster than sent.
     */
    liveMigration: z.object({ permitPostCopy: z.boolean().default(false), permitAutoConverge: z.boolean().default(false) }).strict().optional(),
    /** kvm, or qemu where the hosts have no hardware virtualization (TCG: labs, nested clouds). */
    virtType: z.enum(['kvm', 'qemu']).default('kvm'),
  })
  .strict()
  .superRefine((t, ctx) => {
    const names = t.hosts.map((h) => h.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) ctx.addIssue({ code: 'custom', path: ['hosts'], message: `host ${dup} is listed twice` });
    if (t.landingHost && !names.includes(t.landingHost)) ctx.addIssue({ code: 'custom', path: ['landingHost'], message: `landingHost ${t.landingHost} is not one of the hosts (${names.join(', ')})` });
  });

export const targetConfigSchema = z.discriminatedUnion('driver', [localTarget, openstackTarget, libvirtTarget]);
export const targetNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a target name of letters, digits, ".", "_" or "-"');

export type SecretRef = z.infer<typeof secretRef>;
export type LocalTargetConfig = z.infer<typeof localTarget>;
export type OpenStackTargetConfig = z.infer<typeof openstackTarget>;
export type LibvirtTargetConfig = z.infer<typeof libvirtTarget>;
export type LibvirtHostConfig = z.infer<typeof libvirtHost>;
export type TargetConfig = z.infer<typeof targetConfigSchema>;
