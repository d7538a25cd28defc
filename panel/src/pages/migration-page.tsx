import { useEffect, useMemo, useState } from 'preact/hooks';
import type { MigrationEvent, MigrationStatus } from '../api-shapes';
import { ApiClient, ApiProblem } from '../api-client';
import { DiskProgress, type DiskBar } from '../components/disk-progress';
import { ProblemNotice } from '../components/problem-notice';
import { StageTimeline } from '../components/stage-timeline';
import { StatusBadge } from '../components/status-badge';
import { SyncChart } from '../components/sync-chart';
import { followEvents } from '../event-stream';
import { bytes, duration, stageLabel, time } from '../format';
import { href } from '../hash-route';
import type { Session } from '../session';
import type { SyncRecord } from '../../../workflows/sync-forecast';

const REFRESH_MS = 3000;

interface WarmView {
  syncs?: SyncRecord[];
  totals?: { syncs: number; failedSyncs: number; bytesRead: number; changedBytes: number };
  forecast?: { predictedFinalSyncMs: number; dirtyBytesPerSecond: number };
  cutover?: { actor: string; via: string; requestedAt: string; at?: string };
  lastSyncError?: string;
  nextSyncAt?: string;
}

type DiskStatus = MigrationStatus['disks'][number] & { verification?: { algorithm: string; match: boolean } };

/** What the event's data says about its disk's bytes: copied so far and the disk's size. */
function bytesOf(e: MigrationEvent): { done?: number; total?: number } {
  const d = (e.data ?? {}) as Record<string, unknown>;
  const n = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : undefined);
  return { done: n('bytesDone') ?? n('bytesRead') ?? n('bytesCopied'), total: n('bytesTotal') };
}

/**
 * A migration's page: where it is in its lifecycle, a bar per disk fed by the live event stream, its events as they
 * arrive, what went wrong and what to do, and for warm migrations the syncs and the Cut over button.
 */
export function MigrationPage({ session, id }: { session: Session; id: string }) {
  const [status, setStatus] = useState<MigrationStatus>();
  const [error, setError] = useState<unknown>();
  const [events, setEvents] = useState<Array<{ id?: string; e: MigrationEvent }>>([]);
  const [streamNote, setStreamNote] = useState<string>();
  const [action, setAction] = useState<{ what: string; result?: string; error?: unknown }>();

  useEffect(() => {
    let stop = false;
    setStatus(undefined);
    setEvents([]);
    const load = () =>
      session.api
        .get<MigrationStatus>(ApiClient.path('/migrations/:id', { id }))
        .then((s) => !stop && (setStatus(s), setError(undefined)))
        .catch((err) => !stop && setError(err));
    void load();
    const timer = setInterval(load, REFRESH_MS);
    const unfollow = followEvents(session.api, id, {
      event: (e, eventId) =>
        setEvents((prev) => {
          // Durable events once each; live progress replaces the previous live line of the same kind and disk.
          if (eventId) return prev.some((p) => p.id === eventId) ? prev : [...prev.filter((p) => p.id || !(p.e.name === e.name && p.e.disk === e.disk) || !p.e.live), { id: eventId, e }];
          return [...prev.filter((p) => !(p.e.live && p.e.name === e.name && p.e.disk === e.disk)), { e }];
        }),
      end: () => {
        setStreamNote(undefined);
        void load();
      },
      interrupted: (why) => setStreamNote(why),
    });
    return () => {
      stop = true;
      clearInterval(timer);
      unfollow();
    };
  }, [session, id]);

  // A refusal belongs to the stage it was given in (a cutover refused while Queued is no longer true once Ready);
  // an accepted action stays said.
  useEffect(() => setAction((a) => (a?.error !== undefined ? undefined : a)), [status?.stage]);

  const bars: DiskBar[] = useMemo(() => {
    const disks = (status?.disks ?? []) as DiskStatus[];
    return disks.map((d) => {
      // The stream's newest figure for the disk is fresher than the last poll of the status.
      const latest = events.filter((x) => x.e.disk === d.key && /progress$/.test(x.e.name)).map((x) => bytesOf(x.e)).filter((b) => b.done !== undefined).at(-1);
      const processed = Math.max(d.progress.processed, latest?.done ?? 0);
      return {
        key: d.key,
        label: d.label,
        total: d.progress.total,
        processed: d.state === 'copied' || d.state === 'synced' ? d.progress.total : Math.min(processed, d.progress.total),
        state: d.state,
        ...(d.rateBytesPerSecond !== undefined ? { rateBytesPerSecond: d.rateBytesPerSecond } : {}),
        ...(d.etaSeconds !== undefined ? { etaSeconds: d.etaSeconds } : {}),
        ...(d.verification ? { verified: d.verification.match ? `verified (${d.verification.algorithm})` : 'verification FAILED' } : {}),
      };
    });
  }, [status, events]);

  if (error && !status) {
    return (
      <main>
        <p>
          <a href={href('migrations')}>← Migrations</a>
        </p>
        <ProblemNotice error={error} />
        {error instanceof ApiProblem && error.status === 404 && <p class="muted">No migration {id} in the projects you can see.</p>}
      </main>
    );
  }
  if (!status) return <main aria-busy="true">Loading {id}…</main>;

  const diskLabel = (key: number) => status.disks.find((d) => d.key === key)?.label ?? `disk ${key}`;
  const durable = events.filter((x) => x.id);
  const live = events.filter((x) => !x.id);
  const failedIn = [...durable].reverse().find((x) => x.e.stage !== 'Failed' && x.e.stage !== 'Cancelled')?.e.stage;
  const warm = (status as { warm?: WarmView }).warm;
  const running = status.status.toUpperCase() === 'RUNNING';
  const canAct = session.principal.role !== 'reader';
  const act = async (what: string, path: string, body: unknown = {}) => {
    setAction({ what });
    try {
      const answer = await session.api.post<Record<string, unknown>>(ApiClient.path(path, { id }), body);
      setAction({ what, result: answer.accepted ? `${what}: accepted` : `${what}: done` });
    } catch (err) {
      setAction({ what, error: err });
    }
  };

  return (
    <main>
      <p>
        <a href={href('migrations')}>← Migrations</a>
      </p>
      <div class="page-head">
        <h1>
          {status.vm.name ?? status.vm.moref} <span class="muted">{status.id}</span>
        </h1>
        <StatusBadge stage={status.stage} />
      </div>
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{status.kind}</dd>
        <dt>Source</dt>
        <dd>
          {status.sourceId} / {status.vm.moref ?? status.vm.name}
        </dd>
        <dt>Started</dt>
        <dd>{time(status.startedAt)}</dd>
        {status.closedAt && (
          <>
            <dt>Ended</dt>
            <dd>{time(status.closedAt)}</dd>
          </>
        )}
        {status.submittedBy && (
          <>
            <dt>Submitted by</dt>
            <dd>{status.submittedBy}</dd>
          </>
        )}
        {status.queue && (
          <>
            <dt>In line</dt>
            <dd>
              place {status.queue.position}, waiting for {status.queue.waitingFor.join(', ')}
            </dd>
          </>
        )}
      </dl>

      <StageTimeline kind={status.kind} stage={status.stage} status={status.status} failedIn={failedIn} />

      {status.error && (
        <div class="notice notice-error" role="alert">
          <strong>Failed{failedIn ? ` in ${stageLabel(failedIn)}` : ''}</strong>
          <p>{status.error}</p>
        </div>
      )}
      {status.warnings.map((w) => (
        <div key={w} class="notice notice-warn">
          {w}
        </div>
      ))}

      {canAct && (
        <div class="actions">
          {status.kind === 'warm' && running && (
            <button type="button" onClick={() => act('Cut over', '/migrations/:id/cutover')}>
              Cut over
            </button>
          )}
          {running && (
            <button type="button" class="secondary" onClick={() => confirm(`Cancel migration ${status.id}?`) && act('Cancel', '/migrations/:id/cancel')}>
              Cancel
            </button>
          )}
          {(status.stage === 'Failed' || status.stage === 'Cancelled') && (
            <button type="button" onClick={() => act('Retry', '/migrations/:id/retry')}>
              Retry
            </button>
          )}
        </div>
      )}
      {action?.result && (
        <div class="notice notice-ok" role="status">
          {action.result}
        </div>
      )}
      {action?.error !== undefined && <ProblemNotice error={action.error} what={action.what} />}

      <section aria-labelledby="disks-h">
        <h2 id="disks-h">Disks</h2>
        <DiskProgress disks={bars} />
      </section>

      {warm && (
        <section aria-labelledby="syncs-h">
          <h2 id="syncs-h">Syncs</h2>
          <dl class="facts">
            <dt>Predicted downtime now</dt>
            <dd>{warm.forecast ? duration(warm.forecast.predictedFinalSyncMs / 1000) : 'not yet known (after the first incremental sync)'}</dd>
            {warm.forecast && (
              <>
                <dt>Dirty rate</dt>
                <dd>{bytes(warm.forecast.dirtyBytesPerSecond)}/s</dd>
              </>
            )}
            {warm.nextSyncAt && (
              <>
                <dt>Next sync</dt>
                <dd>{time(warm.nextSyncAt)}</dd>
              </>
            )}
            {warm.cutover && (
              <>
                <dt>Cutover</dt>
                <dd>
                  requested by {warm.cutover.actor} via {warm.cutover.via} at {time(warm.cutover.requestedAt)}
                </dd>
              </>
            )}
          </dl>
          {warm.lastSyncError && <div class="notice notice-warn">Last sync failed: {warm.lastSyncError}</div>}
          <SyncChart syncs={warm.syncs ?? []} />
        </section>
      )}

      <section aria-labelledby="events-h">
        <h2 id="events-h">Events</h2>
        {streamNote && (
          <p class="muted" role="status">
            Event stream interrupted ({streamNote}); reconnecting…
          </p>
        )}
        <ol class="events" aria-live="polite">
          {durable.map((x) => (
            <li key={x.id} class="event" data-event={x.e.name}>
              <time>{time(x.e.time)}</time> <code>{x.e.name}</code> <span class="muted">{stageLabel(x.e.stage)}</span>
              {x.e.disk !== undefined && <span class="muted"> · {diskLabel(x.e.disk)}</span>}
            </li>
          ))}
        </ol>
        {live.length > 0 && (
          <ul class="events live" aria-label="Live progress">
            {live.map((x) => (
              <li key={`${x.e.name}-${x.e.disk}`} class="event live-event">
                <code>{x.e.name}</code> {x.e.disk !== undefined ? diskLabel(x.e.disk) : ''}: {bytes(bytesOf(x.e).done)} of {bytes(bytesOf(x.e).total)}
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
