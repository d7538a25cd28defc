/**
 * QEMU's migration job as libvirt reports it (`virsh domjobinfo --rawstats`: the typed parameters of
 * virDomainGetJobStats, by their VIR_DOMAIN_JOB_* field names), for progress while it runs and the figures after it
 * ended (`--completed`): time, memory and disk processed/remaining/total, the dirty rate, the expected and the total
 * downtime, the error of a failed job.
 */

export interface LibvirtJobInfo {
  /** None, Bounded, Unbounded (running), Completed, Failed, Cancelled. */
  type: 'none' | 'running' | 'completed' | 'failed' | 'cancelled';
  elapsedMs?: number;
  data?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  memory?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  disk?: { totalBytes: number; processedBytes: number; remainingBytes: number };
  dirtyRatePagesPerSecond?: number;
  pageSizeBytes?: number;
  iteration?: number;
  expectedDowntimeMs?: number;
  /** Completed jobs: how long the guest was paused, from its stop on the source to its start on the destination. */
  downtimeMs?: number;
  autoConvergeThrottlePercent?: number;
  error?: string;
}

// virDomainJobType: NONE, BOUNDED, UNBOUNDED, COMPLETED, FAILED, CANCELLED.
const TYPES: LibvirtJobInfo['type'][] = ['none', 'running', 'running', 'completed', 'failed', 'cancelled'];

export function parseJobStats(text: string): LibvirtJobInfo {
  const f = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) f.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const num = (k: string): number | undefined => {
    const v = f.get(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const triple = (prefix: string) => {
    const total = num(`${prefix}_total`);
    return total === undefined ? undefined : { totalBytes: total, processedBytes: num(`${prefix}_processed`) ?? 0, remainingBytes: num(`${prefix}_remaining`) ?? 0 };
  };
  const typeField = f.get('Job type') ?? '';
  const type = /^\d+$/.test(typeField) ? (TYPES[Number(typeField)] ?? 'none') : (typeField.toLowerCase() as LibvirtJobInfo['type']);
  const info: LibvirtJobInfo = { type };
  const set = <K extends keyof LibvirtJobInfo>(k: K, v: LibvirtJobInfo[K] | undefined) => {
    if (v !== undefined) info[k] = v;
  };
  set('elapsedMs', num('time_elapsed'));
  set('data', triple('data'));
  set('memory', triple('memory'));
  set('disk', triple('disk'));
  set('dirtyRatePagesPerSecond', num('memory_dirty_rate'));
  set('pageSizeBytes', num('memory_page_size'));
  set('iteration', num('memory_iteration'));
  set('expectedDowntimeMs', num('downtime') !== undefined && type === 'running' ? num('downtime') : undefined);
  set('downtimeMs', type !== 'running' ? num('downtime') : undefined);
  set('autoConvergeThrottlePercent', num('auto_converge_throttle'));
  set('error', f.get('errmsg'));
  return info;
}
