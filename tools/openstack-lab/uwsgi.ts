/**
 * A WSGI application of Debian's OpenStack packages under uwsgi, as an HTTP server on 127.0.0.1.
 */
import type { ProcessSet, Service } from './proc';

export function uwsgi(
  procs: ProcessSet,
  name: string,
  wsgiFile: string,
  port: number,
  env: Record<string, string>,
  opts: { processes?: number; threads?: number } = {},
): Service {
  const args = [
    '--plugin', 'python3',
    '--http-socket', `127.0.0.1:${port}`,
    '--wsgi-file', wsgiFile,
    '--master',
    '--processes', String(opts.processes ?? 1),
    '--threads', String(opts.threads ?? 1),
    '--enable-threads',
    '--lazy-apps',
    '--need-app',
    '--buffer-size', '65535',
    // Without it uwsgi's http-socket keeps connections open that it never serves again: clients see resets.
    '--add-header', 'Connection: close',
    '--no-orphans',
  ];
  // SIGTERM makes uwsgi reload; SIGQUIT stops it.
  return procs.start(name, 'uwsgi', args, { env, stopSignal: 'SIGQUIT', graceMs: 5_000 });
}
