/**
 * How long a migration will take, from what this deployment has measured: the copy rate of recent cold migrations
 * (disk capacity over the time their Write Volume stage took; holes cost little, so capacity is what the rate is
 * measured against) and the time their other stages took. Without a finished migration there is no estimate, and
 * the answer says so rather than guessing from a nominal rate.
 */
export interface ThroughputSample {
  migrationId: string;
  capacityBytes: number;
  copySeconds: number;
  /** Everything but the copy, from admission to completion: power-off, inspection, conversion, finalize. */
  otherSeconds: number;
  completedAt: string;
}

export type RuntimeEstimate =
  | {
      basis: 'measured';
      seconds: number;
      copySeconds: number;
      otherSeconds: number;
      bytesPerSecond: number;
      /** How many finished migrations the rate comes from. */
      migrations: number;
    }
  | { basis: 'none'; reason: string };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function estimateRuntime(bytesToCopy: number, samples: readonly ThroughputSample[]): RuntimeEstimate {
  const usable = samples.filter((s) => s.copySeconds > 0 && s.capacityBytes > 0);
  if (!usable.length) {
    return { basis: 'none', reason: 'no cold migration has completed in this deployment yet, so there is no measured copy rate; the first one gives the estimate' };
  }
  const bytesPerSecond = usable.reduce((n, s) => n + s.capacityBytes, 0) / usable.reduce((n, s) => n + s.copySeconds, 0);
  const copySeconds = bytesToCopy / bytesPerSecond;
  const otherSeconds = median(usable.map((s) => s.otherSeconds));
  // The parts are rounded and the total is their sum, so the answer adds up (0.6 s + 0.6 s is 1 + 1, not 1).
  const copy = Math.round(copySeconds);
  const other = Math.round(otherSeconds);
  return {
    basis: 'measured',
    seconds: copy + other,
    copySeconds: copy,
    otherSeconds: other,
    bytesPerSecond: Math.round(bytesPerSecond),
    migrations: usable.length,
  };
}
