import { useEffect, useState } from 'preact/hooks';

/**
 * The panel's places, in the URL's fragment (`#/migrations/<id>`): the API owns every path of its origin, so the
 * panel's own navigation never reaches the server, and a link to a page can be shared and reloaded.
 */
export type Route =
  | { page: 'migrations'; query: URLSearchParams }
  | { page: 'migration'; id: string }
  | { page: 'sources' }
  | { page: 'inventory'; sourceId: string; query: URLSearchParams }
  | { page: 'new-migration'; query: URLSearchParams }
  | { page: 'not-found'; path: string };

export function parseRoute(hash: string): Route {
  const [rawPath = '', rawQuery = ''] = hash.replace(/^#/, '').split('?', 2);
  const parts = rawPath.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  const query = new URLSearchParams(rawQuery);
  if (parts.length === 0 || (parts[0] === 'migrations' && parts.length === 1)) return { page: 'migrations', query };
  if (parts[0] === 'migrations' && parts.length === 2) return { page: 'migration', id: parts[1]! };
  if (parts[0] === 'sources' && parts.length === 1) return { page: 'sources' };
  if (parts[0] === 'sources' && parts.length === 2) return { page: 'inventory', sourceId: parts[1]!, query };
  if (parts[0] === 'new' && parts.length === 1) return { page: 'new-migration', query };
  return { page: 'not-found', path: rawPath };
}

/** A fragment link: `href('migrations', id)` → `#/migrations/<id encoded>`, with an optional query. */
export function href(...segments: Array<string | URLSearchParams | Record<string, string | undefined>>): string {
  let query = '';
  const parts: string[] = [];
  for (const s of segments) {
    if (typeof s === 'string') parts.push(encodeURIComponent(s));
    else {
      const q = s instanceof URLSearchParams ? s : new URLSearchParams(Object.entries(s).filter((e): e is [string, string] => !!e[1]));
      query = q.size ? `?${q}` : '';
    }
  }
  return `#/${parts.join('/')}${query}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
