import { ApiProblem } from '../api-client';

/** An API problem (or any error) as the user sees it: the API's own words, and what to do when it says. */
export function ProblemNotice({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const problem = error instanceof ApiProblem ? error : undefined;
  const notFound = problem?.status === 404;
  return (
    <div class="notice notice-error" role="alert">
      <strong>{notFound ? 'Not found' : what ? `${what} failed` : (problem?.title ?? 'Something went wrong')}</strong>
      <p>{problem ? (problem.detail ?? problem.title) : String((error as Error)?.message ?? error)}</p>
      {problem && problem.errors.length > 0 && (
        <ul>
          {problem.errors.map((e) => (
            <li key={e.field}>
              <code>{e.field}</code>: {e.reason}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
