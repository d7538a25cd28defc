import { z } from 'zod';

/**
 * What the agent reports about the machine at enrollment (the Go agent's Machine, agent/discover.go). Validated:
 * it comes from a machine, through the network, and goes into the migration's input and status.
 */
const text = (max: number) => z.string().max(max);

export const discoveredMachineSchema = z
  .object({
    firmwareUuid: text(64).optional(),
    firmware: z.enum(['bios', 'uefi']),
    cpu: z.object({ sockets: z.number().int().min(1).max(1024), coresPerSocket: z.number().int().min(1).max(4096), threads: z.number().int().min(1).max(65536) }),
    memoryBytes: z.number().int().min(0),
    nics: z
      .array(z.object({ name: text(64), mac: z.string().regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/), link: z.boolean(), addresses: z.array(text(64)).max(64).optional() }))
      .max(64)
      .nullable()
      .transform((v) => v ?? []),
    disks: z
      .array(z.object({ index: z.number().int().min(0), name: text(64), sizeBytes: z.number().int().min(512), model: text(128).optional(), serial: text(128).optional() }))
      .min(1, 'the agent found no disks to migrate')
      .max(64),
    guest: z.object({
      type: z.enum(['linux', 'windows', 'unknown']),
      distro: text(64).optional(),
      version: text(64).optional(),
      prettyName: text(256).optional(),
      hostname: text(256).optional(),
      // Windows, from its registry: ProductName, EditionID, CurrentBuildNumber, DisplayVersion, InstallationType and
      // the computer (NetBIOS) name of the control set it booted last.
      productName: text(256).optional(),
      edition: text(64).optional(),
      build: text(32).optional(),
      displayVersion: text(32).optional(),
      installationType: text(32).optional(),
      computerName: text(64).optional(),
      name: text(256).default(''),
      encrypted: z.boolean().optional(),
      lvm: z.boolean().optional(),
      notes: z.array(text(512)).max(64).nullable().optional(),
    }),
    bootId: z.string().regex(/^[0-9a-f]{8,64}$/),
    agentVersion: text(32),
  })
  .strip();

export type DiscoveredMachine = z.infer<typeof discoveredMachineSchema>;
