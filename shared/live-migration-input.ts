import type { ConvergencePolicy } from '../live/convergence';

/** A live migration of one server between the hosts of a target cloud (the `liveMigration` workflow's input). */
export interface LiveMigrationInput {
  operationId: string;
  /** The configured target whose cloud the server runs in; its `hostOperations` credentials act. */
  target: { name: string };
  serverId: string;
  /** A compute host; absent, the scheduler chooses. */
  destination?: string;
  /** auto: Nova decides from the server's storage (shared → live, local disks → block migration). */
  blockMigration: 'auto' | boolean;
  convergence?: ConvergencePolicy;
  requestedBy: string;
}
