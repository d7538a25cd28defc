import { z } from 'zod';

/** POST /migrations body. Names end up in volume and instance names, so they are restricted to safe characters. */

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
const mac = z.string().regex(/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/, 'must be a MAC address like 00:50:56:aa:bb:cc');

const networkMapping = z
  .object({
    sourceMac: mac.optional(),
    sourceNetwork: z.string().min(1).optional(),
    targetNetwork: z.string().min(1),
    targetSubnet: z.string().min(1).optional(),
    preserveMac: z.boolean().optional(),
    fixedIps: z.array(z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' })).max(8).optional(),
    securityGroups: z.array(z.string().min(1).max(255)).max(16).optional(),
    floatingIpNetwork: z.string().min(1).optional(),
    /** Keep the addresses VMware Tools report on the NIC as fixed IPs; neither this nor fixedIps: DHCP. */
    keepIps: z.boolean().optional(),
  })
  .strict()
  .refine((m) => !!m.sourceMac !== !!m.sourceNetwork, { message: 'give exactly one of sourceMac or sourceNetwork', path: ['sourceMac'] })
  .refine((m) => !(m.keepIps && m.fixedIps?.length), { message: 'give fixedIps or keepIps, not both', path: ['keepIps'] });

/** Volume types per source datastore or per disk; a disk mapping wins over its datastore's. */
const storageMapping = z
  .object({
    datastore: z.string().min(1).max(255).optional(),
    diskKey: z.number().int().min(0).optional(),
    volumeType: z.string().min(1),
  })
  .strict()
  .refine((m) => (m.datastore === undefined) !== (m.diskKey === undefined), { message: 'give exactly one of datastore or diskKey', path: ['datastore'] });

/** A VM by inventory name or moref. Names are vSphere display names: printable, at most 80 characters. */
const vmSelector = z
  .object({
    name: z
      .string()
      .min(1)
      .max(80, 'must be at most 80 characters (vSphere limit)')
      .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters')
      .optional(),
    moref: z.string().regex(/^vm-\d{1,12}$/, 'must look like vm-123').optional(),
  })
  .strict()
  .refine((v) => v.name || v.moref, { message: 'give the VM name or moref' });

const isoTime = z.string().refine((v) => !Number.isNaN(Date.parse(v)) && /^\d{4}-\d{2}-\d{2}T/.test(v), 'must be an ISO 8601 time like 2026-11-22T18:00:00Z');

const warmOptions = z
  .object({
    syncIntervalSeconds: z.number().int().min(1, 'must be at least 1 second').max(7 * 24 * 3600, 'must be at most a week').optional(),
    shutdownSource: z.boolean().optional(),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
    startTarget: z.boolean().optional(),
    cutoverAt: isoTime.optional(),
    deleteVolumesOnCancel: z.boolean().optional(),
    syncsPerRun: z.number().int().min(1).max(1000).optional(),
    /** Cut over as soon as the full sync is done (auto-deploy); the same as cutoverAt = now. */
    autoDeploy: z.boolean().optional(),
  })
  .strict()
  .refine((w) => !(w.autoDeploy && w.cutoverAt), { message: 'give cutoverAt or autoDeploy, not both', path: ['autoDeploy'] });

const coldOptions = z
  .object({
    shutdownSource: z.boolean().optional(),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
  })
  .strict();

export const guestOptions = z
  .object({
    convert: z.enum(['auto', 'force', 'skip']).optional(),
    virtioWinIso: z
      .string()
      .regex(/^\/\S*$/, 'must be an absolute path (on the workers) of the virtio-win ISO')
      .refine((p) => !p.split('/').includes('..'), 'must not contain ".."')
      .optional(),
    bootCheck: z
      .union([
        z.boolean(),
        z.object({ timeoutSeconds: z.number().int().min(10, 'must be at least 10 seconds').max(3600, 'must be at most 3600 seconds') }).strict(),
      ], { error: 'must be true, false or {"timeoutSeconds": n}' })
      .optional(),
  })
  .strict();

/** Where a migration lands (also an agent template's target). */
export const targetRequest = z
  .object({
    /** A configured target (default: the configuration's defaultTarget). */
    name: name.optional(),
    project: name,
    instanceName: name.optional(),
    /** Absent: the worker picks the smallest flavor that fits, at preflight. */
    flavor: z.string().min(1).optional(),
    volumeType: z.string().min(1),
    storageMap: z.array(storageMapping).max(64).optional(),
    availabilityZone: z.string().min(1).optional(),
    /** The block storage zone of the volumes (default: the cloud's default zone); often the same name as the instance's. */
    volumeAvailabilityZone: z.string().min(1).optional(),
    networks: z.array(networkMapping).default([]),
    diskBus: z.enum(['virtio', 'scsi', 'sata', 'ide']).optional(),
    machineType: z.enum(['pc-i440fx', 'pc-q35']).optional(),
    keyName: z.string().min(1).max(255).optional(),
    deleteVolumesOnTermination: z.boolean().optional(),
    keepOnFailure: z.boolean().optional(),
    start: z.boolean().optional(),
    /** Deploy from clones of the replicated volumes (the default, and the only way vmigrate deploys). */
    cloneDisks: z.boolean().optional(),
  })
  .strict();

export const createMigrationRequest = z
  .object({
    /** cold (default): source off, one copy. warm: CBT syncs while the source runs, then a cutover. */
    kind: z.enum(['cold', 'warm']).default('cold'),
    warm: warmOptions.optional(),
    /** false: create the migration (holding its VM) and start it later with POST /migrations/:id/start. */
    startReplication: z.boolean().optional(),
    /** Cold migrations: a clean guest shutdown before the copy instead of a hard power-off. */
    cold: coldOptions.optional(),
    sourceId: z.string().min(1).regex(/^[A-Za-z0-9_.-]+$/, 'must be a configured source id'),
    /** The VM to migrate … */
    vm: vmSelector.optional(),
    /** … or several: one migration each, with the same options. */
    vms: z.array(vmSelector).min(1).max(100).optional(),
    target: targetRequest,
    /** Guest conversion and the boot check (see shared/migration-input.ts GuestOptions). */
    guest: guestOptions.optional(),
  })
  .strict()
  .refine((b) => b.kind === 'warm' || b.warm === undefined, { message: 'warm options need "kind": "warm"', path: ['warm'] })
  .refine((b) => b.kind === 'cold' || b.cold === undefined, { message: 'cold options are for "kind": "cold"', path: ['cold'] })
  .refine((b) => !!b.vm !== !!b.vms, { message: 'give exactly one of "vm" or "vms"', path: ['vm'] })
  .refine((b) => !b.vms || new Set(b.vms.map((v) => v.moref ?? `name:${v.name}`)).size === b.vms.length, { message: 'a VM is listed twice', path: ['vms'] });

/** POST /migrations/:id/cutover body (all optional). The actor is the caller, from their token. */
export const cutoverRequest = z
  .object({
    at: isoTime.optional(),
  })
  .strict();

export type CreateMigrationRequest = z.infer<typeof createMigrationRequest>;

