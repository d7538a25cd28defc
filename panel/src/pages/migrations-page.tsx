import { ColumnHeads } from '../components/column-heads';
import { useEffect, useState } from 'preact/hooks';
import { COLD_STAGES, WARM_STAGES } from '../../../shared/migration-stages';
import type { MigrationSummary } from '../api-shapes';
import { ChoiceFilter } from '../components/choice-filter';
import { ProblemNotice } from '../components/problem-notice';
import { StatusBadge } from '../components/status-badge';
import { TokenPager } from '../components/token-pager';
import { stageLabel, time } from '../format';
import { href } from '../hash-route';
import type { Session } from '../session';

const STAGES = [...new Set([...COLD_STAGES, ...WARM_STAGES, 'Failed', 'Cancelled'])];
const REFRESH_MS = 5000;

/**
 * Migrations of the project in view: filters and paging as the API has them (each in the URL, so a filtered list can
 * be shared), refreshed while shown so stages move on their own.
 */
export function MigrationsPage({ session, query }: { session: Session; query: URLSearchParams }) {
  const filters = { state: query.get('state') ?? '', kind: query.get('kind') ?? '', status: query.get('status') ?? '' };
  const [pages, setPages] = useState<string[]>([]);
  const [answer, setAnswer] = useState<{ migrations: MigrationSummary[]; nextPageToken?: string }>();
  const [error, setError] = useState<unknown>();
  const pageToken = pages.at(-1);

  useEffect(() => setPages([]), [filters.state, filters.kind, filters.status, session.project]);
  useEffect(() => {
    let stop = false;
    const load = () =>
      session.api
        .get<{ migrations: MigrationSummary[]; nextPageToken?: string }>('/migrations', { project: session.project, ...filters, limit: 25, pageToken })
        .then((a) => !stop && (setAnswer(a), setError(undefined)))
        .catch((err) => !stop && setError(err));
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, [session, filters.state, filters.kind, filters.status, pageToken]);

  const setFilter = (name: string, value: string) => {
    const q = new URLSearchParams(query);
    if (value) q.set(name, value);
    else q.delete(name);
    location.hash = href('migrations', q);
  };

  return (
    <main>
      <div class="page-head">
        <h1>Migrations</h1>
        {session.principal.role !== 'reader' && (
          <a class="button" href={href('new')}>
            New Migration
          </a>
        )}
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <ChoiceFilter label="Stage" value={filters.state} choices={STAGES.map((st) => [st, stageLabel(st)])} onChange={(v) => setFilter('state', v)} />
        <ChoiceFilter label="Kind" value={filters.kind} choices={[['cold', 'cold'], ['warm', 'warm']]} onChange={(v) => setFilter('kind', v)} />
        <ChoiceFilter label="Status" value={filters.status} choices={[['running', 'running'], ['closed', 'ended']]} onChange={(v) => setFilter('status', v)} />
      </form>
      <ProblemNotice error={error} what="Listing migrations" />
      {answer && answer.migrations.length === 0 && <p class="muted">No migrations{filters.state || filters.kind || filters.status ? ' match these filters' : ' yet'}.</p>}
      {answer && answer.migrations.length > 0 && (
        <table class="list">
          <ColumnHeads names={['Migration', 'VM', 'Kind', 'Stage', 'Project', 'Started']} />
          <tbody>
            {answer.migrations.map((m) => (
              <tr key={m.id}>
                <td data-label="Migration">
                  <a href={href('migrations', m.id)}>{m.id}</a>
                </td>
                <td data-label="VM">{m.sourceVm ?? '—'}</td>
                <td data-label="Kind">{m.kind ?? '—'}</td>
                <td data-label="Stage">
                  <StatusBadge stage={m.stage ?? m.status} />
                </td>
                <td data-label="Project">{m.project ?? '—'}</td>
                <td data-label="Started">{time(m.startedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <TokenPager label="Pages" pages={pages} next={answer?.nextPageToken} onChange={setPages} />
    </main>
  );
}
