import { useEffect, useState } from 'preact/hooks';
import type { Source } from '../api-shapes';
import { ProblemNotice } from '../components/problem-notice';
import { href } from '../hash-route';
import type { Session } from '../session';

/** The sources the caller may migrate from, each checked live by a worker: reachable, what it is, how fast it answers. */
export function SourcesPage({ session }: { session: Session }) {
  const [sources, setSources] = useState<Source[]>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    session.api
      .get<{ sources: Source[] }>('/sources', { check: 'true' })
      .then((a) => setSources(a.sources))
      .catch(setError);
  }, [session]);
  return (
    <main>
      <h1>Sources</h1>
      <ProblemNotice error={error} what="Reading the sources" />
      {!sources && !error && <p aria-busy="true">Checking the sources…</p>}
      {sources && sources.length === 0 && <p class="muted">No source is configured for your projects.</p>}
      {sources && sources.length > 0 && (
        <ul class="cards">
          {sources.map((s) => (
            <li key={s.id} class="card" data-source={s.id}>
              <h2>
                <a href={href('sources', s.id)}>{s.id}</a>
              </h2>
              {s.url && <p class="muted">{s.url}</p>}
              {s.lab && <p class="muted">{String(s.description ?? 'a lab source')}</p>}
              {s.connectivity ? (
                s.connectivity.reachable ? (
                  <p>
                    <span class="badge badge-ok">reachable</span> {s.connectivity.product ?? s.connectivity.apiType} {s.connectivity.apiVersion}
                    {s.connectivity.latencyMs !== undefined && <span class="muted"> · {s.connectivity.latencyMs} ms</span>}
                  </p>
                ) : (
                  <p>
                    <span class="badge badge-bad">unreachable</span> {s.connectivity.error}
                  </p>
                )
              ) : (
                <p class="muted">not checked</p>
              )}
              <a class="button secondary" href={href('sources', s.id)}>
                Inventory
              </a>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
