import { useState } from 'preact/hooks';
import { ProblemNotice } from '../components/problem-notice';
import { signIn, type Session } from '../session';

/** Sign-in with a token the API accepts: a vmigrate API token or a Keystone token; the API decides, not the panel. */
export function SignInPage({ onSignedIn, onExpired, expired }: { onSignedIn: (s: Session) => void; onExpired: () => void; expired?: boolean }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(token.trim(), onExpired));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>vmigrate</h1>
      <p class="muted">Migration Panel: sources, inventory, preflight, migrations and their events.</p>
      {expired && <div class="notice">Your session ended: sign in again.</div>}
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} aria-describedby="token-help" />
        <p id="token-help" class="help">
          A vmigrate API token, or a Keystone token when the service uses your cloud's identity (<code>openstack token issue</code>).
        </p>
        <button type="submit" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <ProblemNotice error={error} what="Sign-in" />
    </main>
  );
}
