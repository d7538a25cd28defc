import { ColumnHeads } from './column-heads';
import { forecastFinalSync, type SyncRecord } from '../../../workflows/sync-forecast';
import { bytes, duration } from '../format';

const W = 640;
const H = 220;
const PAD = { left: 56, right: 56, top: 16, bottom: 28 };

/**
 * A warm migration's syncs as a chart: per sync the bytes that changed (bars) and how long it took, and the
 * predicted downtime of a cutover made right after it (the line) — computed by the same forecast the workflow uses,
 * over the syncs up to that one. A table with the same figures follows it for those who read rather than look.
 */
export function SyncChart({ syncs }: { syncs: SyncRecord[] }) {
  if (!syncs.length) return <p class="muted">No sync has completed yet.</p>;
  const points = syncs.map((s, i) => ({ s, predictedMs: forecastFinalSync(syncs.slice(0, i + 1), s.snapshotAt, s.snapshotAt + s.durationMs)?.predictedFinalSyncMs }));
  const maxBytes = Math.max(1, ...syncs.map((s) => s.changedBytes));
  const maxMs = Math.max(1, ...points.map((p) => Math.max(p.s.durationMs, p.predictedMs ?? 0)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / syncs.length;
  const x = (i: number) => PAD.left + slot * i + slot / 2;
  const yBytes = (b: number) => PAD.top + plotH - (b / maxBytes) * plotH;
  const yMs = (ms: number) => PAD.top + plotH - (ms / maxMs) * plotH;
  const line = points
    .map((p, i) => (p.predictedMs === undefined ? undefined : `${x(i)},${yMs(p.predictedMs)}`))
    .filter(Boolean)
    .join(' ');
  return (
    <figure class="sync-chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${syncs.length} syncs: changed bytes per sync and the predicted downtime after each`}>
        <line x1={PAD.left} y1={PAD.top + plotH} x2={W - PAD.right} y2={PAD.top + plotH} class="axis" />
        <text x={PAD.left - 6} y={PAD.top + 10} class="tick" text-anchor="end">
          {bytes(maxBytes)}
        </text>
        <text x={W - PAD.right + 6} y={PAD.top + 10} class="tick">
          {duration(maxMs / 1000)}
        </text>
        {points.map((p, i) => (
          <g key={p.s.n}>
            <rect x={x(i) - slot * 0.3} width={slot * 0.6} y={yBytes(p.s.changedBytes)} height={PAD.top + plotH - yBytes(p.s.changedBytes)} class={`bar-${p.s.kind}`}>
              <title>{`sync ${p.s.n} (${p.s.kind}): ${bytes(p.s.changedBytes)} changed, took ${duration(p.s.durationMs / 1000)}`}</title>
            </rect>
            <circle cx={x(i)} cy={yMs(p.s.durationMs)} r={3} class="took" />
            <text x={x(i)} y={H - 8} class="tick" text-anchor="middle">
              {p.s.n}
            </text>
          </g>
        ))}
        {line && <polyline points={line} class="predicted" />}
      </svg>
      <figcaption>
        <span class="key key-changed">changed bytes</span> <span class="key key-took">sync duration</span> <span class="key key-predicted">predicted downtime</span>
      </figcaption>
      <table class="list compact">
        <caption class="visually-hidden">Syncs</caption>
        <ColumnHeads names={['Sync', 'Kind', 'Changed', 'Read', 'Took', 'Predicted downtime after it']} />
        <tbody>
          {points.map((p) => (
            <tr key={p.s.n}>
              <td data-label="Sync">{p.s.n}</td>
              <td data-label="Kind">{p.s.kind}</td>
              <td data-label="Changed">{bytes(p.s.changedBytes)}</td>
              <td data-label="Read">{bytes(p.s.bytesRead)}</td>
              <td data-label="Took">{duration(p.s.durationMs / 1000)}</td>
              <td data-label="Predicted">{p.predictedMs === undefined ? '—' : duration(p.predictedMs / 1000)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
