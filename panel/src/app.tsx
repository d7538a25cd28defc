import { useEffect, useState } from 'preact/hooks';
import { href, useRoute } from './hash-route';
import { InventoryPage } from './pages/inventory-page';
import { MigrationPage } from './pages/migration-page';
import { MigrationsPage } from './pages/migrations-page';
import { NewMigrationPage } from './pages/new-migration-page';
import { SignInPage } from './pages/sign-in-page';
import { SourcesPage } from './pages/sources-page';
import { saveProject, savedToken, signIn, signOut, type Session } from './session';

/** The panel: sign-in, then the pages, under a header with the project in view and who is signed in. */
export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session>();
  const [restoring, setRestoring] = useState(() => !!savedToken());
  const [expired, setExpired] = useState(false);
  const expire = () => {
    signOut();
    setSession(undefined);
    setExpired(true);
  };

  useEffect(() => {
    const token = savedToken();
    if (!token) return;
    signIn(token, expire)
      .then(setSession, () => signOut())
      .finally(() => setRestoring(false));
  }, []);

  if (restoring) return <main aria-busy="true">Signing in…</main>;
  if (!session) return <SignInPage onSignedIn={(s) => (setExpired(false), setSession(s))} onExpired={expire} expired={expired} />;

  const projects = session.principal.projects === '*' ? undefined : session.principal.projects;
  const page = route.page;
  return (
    <>
      <header class="top">
        <a class="brand" href={href('migrations')}>
          vmigrate
        </a>
        <nav aria-label="Main">
          <a href={href('migrations')} aria-current={page === 'migrations' || page === 'migration' ? 'page' : undefined}>
            Migrations
          </a>
          <a href={href('sources')} aria-current={page === 'sources' || page === 'inventory' ? 'page' : undefined}>
            Sources
          </a>
          {session.principal.role !== 'reader' && (
            <a href={href('new')} aria-current={page === 'new-migration' ? 'page' : undefined}>
              New Migration
            </a>
          )}
        </nav>
        <div class="who">
          {projects && projects.length > 1 ? (
            <label>
              <span class="visually-hidden">Project</span>
              <select
                value={session.project}
                onChange={(e) => {
                  const project = (e.target as HTMLSelectElement).value;
                  saveProject(project);
                  setSession({ ...session, project });
                }}
              >
                {projects.map((p) => (
                  <option key={p} value={p}>
                    {p}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <span class="project">{session.project ?? 'all projects'}</span>
          )}
          <span class="user">
            {session.principal.user} <span class="muted">({session.principal.role})</span>
          </span>
          <button
            type="button"
            class="link"
            onClick={() => {
              signOut();
              setSession(undefined);
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      {page === 'migrations' && <MigrationsPage session={session} query={route.query} />}
      {page === 'migration' && <MigrationPage session={session} id={route.id} />}
      {page === 'sources' && <SourcesPage session={session} />}
      {page === 'inventory' && <InventoryPage session={session} sourceId={route.sourceId} />}
      {page === 'new-migration' && <NewMigrationPage session={session} query={route.query} />}
      {page === 'not-found' && (
        <main>
          <h1>Not found</h1>
          <p>
            Nothing at <code>{route.path}</code>. <a href={href('migrations')}>Migrations</a>
          </p>
        </main>
      )}
    </>
  );
}
