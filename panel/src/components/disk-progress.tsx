import { bytes, duration, percent } from '../format';

export interface DiskBar {
  key: number;
  label: string;
  total: number;
  processed: number;
  state?: string;
  rateBytesPerSecond?: number;
  etaSeconds?: number;
  verified?: string;
}

/** One bar per disk: what is copied of its total, the rate and time left while it copies, its verification. */
export function DiskProgress({ disks }: { disks: DiskBar[] }) {
  if (!disks.length) return <p class="muted">No disks yet: they are known once the export begins.</p>;
  return (
    <ul class="disks">
      {disks.map((d) => {
        const pct = percent(d.processed, d.total);
        return (
          <li key={d.key} class="disk" data-disk={d.key}>
            <div class="disk-head">
              <span class="disk-label">{d.label}</span>
              <span class="disk-state">{d.state ?? ''}</span>
            </div>
            <div class="bar" role="progressbar" aria-label={`${d.label} copied`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-valuetext={`${pct} % (${bytes(d.processed)} of ${bytes(d.total)})`}>
              <div class="bar-fill" style={{ width: `${pct}%` }} />
            </div>
            <div class="disk-figures">
              <span>
                {bytes(d.processed)} / {bytes(d.total)} ({pct} %)
              </span>
              {d.rateBytesPerSecond !== undefined && <span>{bytes(d.rateBytesPerSecond)}/s</span>}
              {d.etaSeconds !== undefined && <span>{duration(d.etaSeconds)} left</span>}
              {d.verified && <span class="verified">{d.verified}</span>}
            </div>
          </li>
        );
      })}
    </ul>
  );
}
