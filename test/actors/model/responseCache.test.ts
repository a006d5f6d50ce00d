import { describe, expect, it } from 'vitest';
import { cacheKeyOf, CachingSettings, ResponseCache, scopeKey } from '../../../actors/model/responseCache.ts';

describe('ResponseCache', () => {
  it('answers until the time to live has passed, then forgets', () => {
    let now = 1_000;
    const cache = new ResponseCache({ now: () => now });
    cache.set('k', { answer: 42 }, 500);
    now += 499;
    expect(cache.get('k')).toEqual({ answer: 42 });
    now += 1;
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('evicts the oldest entry past its size, keeping a refreshed one', () => {
    const cache = new ResponseCache({ maxEntries: 2 });
    cache.set('a', 1, 60_000);
    cache.set('b', 2, 60_000);
    cache.set('a', 3, 60_000);
    cache.set('c', 4, 60_000);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([3, undefined, 4]);
  });
});

describe('cache keys and settings', () => {
  it('keys by content: the same parts give the same key, any difference another', () => {
    expect(cacheKeyOf(['s', 'calc_evaluate', { expression: '1+1' }])).toBe(cacheKeyOf(['s', 'calc_evaluate', { expression: '1+1' }]));
    expect(cacheKeyOf(['s', 'calc_evaluate', { expression: '1+1' }])).not.toBe(cacheKeyOf(['s', 'calc_evaluate', { expression: '1+2' }]));
    expect(scopeKey('session', { sessionId: 's-1', agent: 'a' })).not.toBe(scopeKey('session', { sessionId: 's-2', agent: 'a' }));
    expect(scopeKey('agent', { sessionId: 's-1', agent: 'a' })).toBe(scopeKey('agent', { sessionId: 's-2', agent: 'a' }));
  });

  it('is off unless set, and fills a rule\'s defaults', () => {
    expect(CachingSettings.parse({})).toEqual({});
    expect(CachingSettings.parse({ toolCalls: {} })).toEqual({ toolCalls: { scope: 'session', ttlMs: 300_000 } });
    expect(CachingSettings.safeParse({ toolCalls: { scope: 'everyone' } }).success).toBe(false);
  });
});
