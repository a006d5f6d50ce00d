import { useEffect, useState } from 'preact/hooks';

/** The page's places, from the address's hash: `#/`, `#/sessions/<id>`, `#/pools`. */
export type Route = { page: 'sessions' } | { page: 'session'; sessionId: string } | { page: 'pools' } | { page: 'unknown'; hash: string };

/** The route a hash names; anything else is `unknown`, shown as such rather than as the sessions. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/' || path === '/sessions') return { page: 'sessions' };
  if (path === '/pools') return { page: 'pools' };
  const session = /^\/sessions\/(.+)$/.exec(path);
  if (session) return { page: 'session', sessionId: safeDecode(session[1]!) };
  return { page: 'unknown', hash };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The links to each place. */
export const sessionsHref = '#/';
export const poolsHref = '#/pools';
export const sessionHref = (sessionId: string) => `#/sessions/${encodeURIComponent(sessionId)}`;

/** The current route, following the hash as it changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const follow = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', follow);
    return () => removeEventListener('hashchange', follow);
  }, []);
  return route;
}
