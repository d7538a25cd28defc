import type { VimClient } from '../vsphere/vim-client';
import type { MoRef } from '../vsphere/vim-types';

/** What an earlier run of a retried migration left of one disk (cold migrations). */
export interface EarlierRunOfDisk<Copy extends { bytesTotal: number }> {
  /** When the earlier run began copying (ISO 8601). */
  since: string;
  /** Its verified copy: reused without reading or writing anything. */
  copy?: Copy;
  /** Or how far its copy durably got, into which volume. */
  resumeFrom?: number;
  volumeId?: string;
}

/**
 * Whether what an earlier run of this migration copied still stands for the source disk: the disk has the same size
 * and the VM has not been powered on since that run began copying (vCenter's events; a VM that ran may have written
 * anything). If vCenter cannot say, it may have run.
 */
export async function earlierRunStillValid(client: VimClient, vm: MoRef, capacityBytes: number, earlier: EarlierRunOfDisk<{ bytesTotal: number }>): Promise<{ valid: boolean; reason?: string }> {
  const copiedSize = earlier.copy?.bytesTotal;
  if (copiedSize !== undefined && copiedSize !== capacityBytes) return { valid: false, reason: `the disk is now ${capacityBytes} bytes, it was ${copiedSize}` };
  try {
    const on = await client.poweredOnSince(vm, earlier.since);
    return on ? { valid: false, reason: `the VM was powered on at ${on}, after the earlier run began copying` } : { valid: true };
  } catch (err) {
    return { valid: false, reason: `vCenter could not say whether the VM ran since then: ${(err as Error).message}` };
  }
}

