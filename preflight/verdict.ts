/**
 * A preflight verdict: Pass, Warn or Fail, with every reason. A reason has a stable code (for scripts and the UI)
 * and a sentence saying what it means and what to do. A migration is accepted only with Pass or Warn.
 */
export type Verdict = 'Pass' | 'Warn' | 'Fail';

export interface PreflightReason {
  code: string;
  severity: 'warn' | 'fail';
  message: string;
}

export interface VmVerdict {
  /** As asked (name or moref), and what the inventory resolved it to. */
  vm: { name?: string; moref?: string };
  verdict: Verdict;
  reasons: PreflightReason[];
  /** The flavor the instance gets (the one asked for, or the smallest that fits). */
  flavor?: string;
  /** What the copy has to move: the disks' capacity (holes are skipped, so the copy is often less). */
  bytesToCopy?: number;
  disks?: number;
}

export function verdictOf(reasons: readonly PreflightReason[]): Verdict {
  if (reasons.some((r) => r.severity === 'fail')) return 'Fail';
  return reasons.length ? 'Warn' : 'Pass';
}

export const fail = (code: string, message: string): PreflightReason => ({ code, severity: 'fail', message });
export const warn = (code: string, message: string): PreflightReason => ({ code, severity: 'warn', message });

/** "vm.rdm_disk: …; disk.shared: …" — the reasons as one line, for a 422 detail. */
export function describeFailures(v: VmVerdict): string {
  return v.reasons
    .filter((r) => r.severity === 'fail')
    .map((r) => `${r.code}: ${r.message}`)
    .join('; ');
}
