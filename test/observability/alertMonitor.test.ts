import { describe, expect, it } from 'vitest';
import { AlertMonitor, AlertThresholds } from '../../observability/alertMonitor.ts';
import type { AlertBody } from '../../transport/messages.ts';

function monitor(thresholds: unknown) {
  let now = 1_000_000;
  const raised: AlertBody[] = [];
  const m = new AlertMonitor({ thresholds: AlertThresholds.parse(thresholds), raise: (a) => raised.push(a), now: () => now });
  return { m, raised, advance: (ms: number) => (now += ms) };
}

describe('AlertMonitor', () => {
  it('raises a tool error-rate alert once the window holds enough calls at or over the rate, and once only', () => {
    const { m, raised } = monitor({ toolErrorRate: { threshold: 0.5, minCalls: 4 } });
    for (const ok of [false, false, false]) m.recordToolCall({ tool: 'db_query', pool: 'db', ok });
    expect(raised).toHaveLength(0); // three calls are not enough to call it a trend
    m.recordToolCall({ tool: 'db_query', pool: 'db', ok: true });
    expect(raised).toEqual([expect.objectContaining({
      type: 'alert.raised', kind: 'tool_error_rate', subject: 'db_query', value: 0.75, threshold: 0.5, windowMs: 60_000,
      detail: 'Tool db_query: 3 of the last 4 calls failed (75%) in 1 min, at or over the 50% alert threshold.',
    })]);
    m.recordToolCall({ tool: 'db_query', pool: 'db', ok: false });
    expect(raised).toHaveLength(1);
  });

  it('raises again only after the rate went back under the threshold', () => {
    const { m, raised } = monitor({ toolErrorRate: { threshold: 0.5, minCalls: 2 } });
    m.recordToolCall({ tool: 't_a', pool: 't', ok: false });
    m.recordToolCall({ tool: 't_a', pool: 't', ok: false });
    for (let i = 0; i < 3; i++) m.recordToolCall({ tool: 't_a', pool: 't', ok: true }); // 2 of 5: under
    for (let i = 0; i < 2; i++) m.recordToolCall({ tool: 't_a', pool: 't', ok: false }); // 4 of 7: over again
    expect(raised.map((a) => a.kind)).toEqual(['tool_error_rate', 'tool_error_rate']);
  });

  it('forgets calls older than the window', () => {
    const { m, raised, advance } = monitor({ toolErrorRate: { threshold: 0.5, minCalls: 3, windowMs: 10_000 } });
    m.recordToolCall({ tool: 't_a', pool: 't', ok: false });
    m.recordToolCall({ tool: 't_a', pool: 't', ok: false });
    advance(10_001);
    m.recordToolCall({ tool: 't_a', pool: 't', ok: false });
    expect(raised).toHaveLength(0); // one call in the window
  });

  it('keeps tools apart but counts a pool over all of its tools', () => {
    const { m, raised } = monitor({ toolErrorRate: { threshold: 0.6, minCalls: 2 }, poolErrorRate: { threshold: 0.5, minCalls: 4 } });
    m.recordToolCall({ tool: 'db_query', pool: 'db', ok: false });
    m.recordToolCall({ tool: 'db_schema', pool: 'db', ok: true });
    m.recordToolCall({ tool: 'db_query', pool: 'db', ok: true });
    m.recordToolCall({ tool: 'db_schema', pool: 'db', ok: false });
    expect(raised.map((a) => [a.kind, a.subject])).toEqual([['pool_error_rate', 'db']]);
  });

  it('raises a session spend alert when a session passes its threshold', () => {
    const { m, raised } = monitor({ sessionSpendUsd: 0.5 });
    m.recordSpend({ sessionId: 's-1', tenant: null, usd: 0.3, totalUsd: 0.3 });
    m.recordSpend({ sessionId: 's-2', tenant: null, usd: 0.4, totalUsd: 0.4 });
    expect(raised).toHaveLength(0);
    m.recordSpend({ sessionId: 's-1', tenant: null, usd: 0.25, totalUsd: 0.55 });
    expect(raised).toEqual([expect.objectContaining({ kind: 'session_spend', subject: 's-1', value: 0.55, threshold: 0.5 })]);
  });

  it('sums a tenant\'s spend over its window, across sessions', () => {
    const { m, raised, advance } = monitor({ tenantSpendUsd: { threshold: 1, windowMs: 60_000 } });
    m.recordSpend({ sessionId: 's-1', tenant: 'acme', usd: 0.6, totalUsd: 0.6 });
    advance(61_000);
    m.recordSpend({ sessionId: 's-2', tenant: 'acme', usd: 0.6, totalUsd: 0.6 });
    expect(raised).toHaveLength(0); // the first 0.6 left the window
    m.recordSpend({ sessionId: 's-3', tenant: 'globex', usd: 0.9, totalUsd: 0.9 });
    m.recordSpend({ sessionId: 's-2', tenant: 'acme', usd: 0.5, totalUsd: 1.1 });
    expect(raised).toEqual([expect.objectContaining({ kind: 'tenant_spend', subject: 'acme', value: 1.1, threshold: 1, windowMs: 60_000 })]);
  });

  it('raises nothing without thresholds', () => {
    const { m, raised } = monitor({});
    for (let i = 0; i < 20; i++) m.recordToolCall({ tool: 't_a', pool: 't', ok: false });
    m.recordSpend({ sessionId: 's', tenant: 'x', usd: 100, totalUsd: 100 });
    expect(raised).toHaveLength(0);
  });
});
