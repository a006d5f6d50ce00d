import { describe, expect, it } from 'vitest';
import { parseRoute, poolsHref, sessionHref, sessionsHref } from '../../console/app/src/route.ts';

describe('parseRoute', () => {
  it('reads the sessions list from an empty hash, `#`, `#/` and `#/sessions`', () => {
    for (const hash of ['', '#', '#/', '#/sessions']) expect(parseRoute(hash), hash).toEqual({ page: 'sessions' });
  });

  it('reads the pools page', () => {
    expect(parseRoute('#/pools')).toEqual({ page: 'pools' });
  });

  it('reads a session’s id, decoded', () => {
    expect(parseRoute('#/sessions/s-01J9')).toEqual({ page: 'session', sessionId: 's-01J9' });
    expect(parseRoute('#/sessions/tenant%2Fs%201')).toEqual({ page: 'session', sessionId: 'tenant/s 1' });
  });

  it('keeps a session id that is not valid percent-encoding as it is', () => {
    expect(parseRoute('#/sessions/50%25%zz')).toEqual({ page: 'session', sessionId: '50%25%zz' });
  });

  it('answers unknown, with the hash, for anything else', () => {
    for (const hash of ['#/sessions/', '#/pools/extra', '#/nowhere', '#sessions', '#//']) expect(parseRoute(hash), hash).toEqual({ page: 'unknown', hash });
  });
});

describe('links', () => {
  it('lead back to the routes they name', () => {
    expect(parseRoute(sessionsHref)).toEqual({ page: 'sessions' });
    expect(parseRoute(poolsHref)).toEqual({ page: 'pools' });
  });

  it('carry any session id through the address and back', () => {
    for (const id of ['s-1', 'a/b', 'with space', '100%', 'q?x=1#frag', 'ünïcode'])
      expect(parseRoute(sessionHref(id)), id).toEqual({ page: 'session', sessionId: id });
  });
});
