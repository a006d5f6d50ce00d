import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { CircuitBreakerRegistry, countsAgainstCircuit } from '../../../actors/toolCalls/circuitBreakerRegistry.ts';
import { CircuitBreakerSettings } from '../../../machines/circuitBreaker.ts';
import { toolFailure, type ToolFailureCode } from '../../../tools/toolFailure.ts';

const cooldownMs = 50;
const fail = (code: ToolFailureCode) => toolFailure(code, `${code} happened`);

/** A registry whose log lines are kept, parsed, for the test to read. */
function breakers(overrides: Partial<CircuitBreakerSettings> = {}, inspect?: (event: InspectionEvent) => void) {
  const lines: Array<{ level: number; msg: string; tool?: string; from?: string; to?: string; component?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const registry = new CircuitBreakerRegistry(CircuitBreakerSettings.parse({ failureThreshold: 3, cooldownMs, ...overrides }), logger, inspect);
  return { registry, lines };
}

/** Records `count` pool failures for `tool` and returns what each record reported. */
function failTimes(registry: CircuitBreakerRegistry, tool: string, count: number, code: ToolFailureCode = 'TIMEOUT') {
  return Array.from({ length: count }, () => registry.record(tool, fail(code)));
}

describe('countsAgainstCircuit', () => {
  it.each(['TIMEOUT', 'UNAVAILABLE', 'INTERNAL'] as const)('counts %s, which says the pool is unwell', (code) => {
    expect(countsAgainstCircuit(fail(code))).toBe(true);
  });

  it.each(['INVALID_INPUT', 'NOT_FOUND', 'FORBIDDEN', 'UNKNOWN_TOOL', 'SPECIALIST_FAILED'] as const)('does not count %s, which is the caller’s mistake', (code) => {
    expect(countsAgainstCircuit(fail(code))).toBe(false);
  });

  it('does not count a success', () => {
    expect(countsAgainstCircuit(undefined)).toBe(false);
  });

  // Regression: retries of calls a dead worker held waited for its claim, timed out, and opened the circuit of a healthy pool.
  it('does not count a call that timed out waiting for an earlier attempt of itself', () => {
    expect(countsAgainstCircuit({ ...fail('TIMEOUT'), details: { reason: 'claim_held', heldBy: 'ledger-1' } })).toBe(false);
  });

  it('does not count an IN_DOUBT answer: the pool answered, about one call', () => {
    expect(countsAgainstCircuit(fail('IN_DOUBT'))).toBe(false);
  });
});

describe('CircuitBreakerRegistry', () => {
  // The breakers run on XState's default clock, which calls the global setTimeout when a delay
  // starts, and compute retryInMs from Date.now(): vitest's fake timers control both.
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports closed for a tool it has never seen, and admits calls to it', () => {
    const { registry } = breakers();
    expect(registry.state('files_read')).toBe('closed');
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    registry.stop();
  });

  it('opens at the threshold of pool failures and reports only that transition', () => {
    const { registry } = breakers();
    expect(failTimes(registry, 'files_read', 3)).toEqual([undefined, undefined, { tool: 'files_read', from: 'closed', to: 'open' }]);
    expect(registry.state('files_read')).toBe('open');
    registry.stop();
  });

  it('keeps admitting one failure short of the threshold', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 2, 'UNAVAILABLE');
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    registry.stop();
  });

  it('refuses calls while open, saying when to try again', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3, 'INTERNAL');
    expect(registry.admit('files_read')).toEqual({ admitted: false, state: 'open', retryInMs: cooldownMs });
    vi.advanceTimersByTime(20);
    const admission = registry.admit('files_read');
    expect(admission).toEqual({ admitted: false, state: 'open', retryInMs: cooldownMs - 20 });
    registry.stop();
  });

  it.each(['INVALID_INPUT', 'NOT_FOUND', 'FORBIDDEN'] as const)('does not count %s against the circuit, and it resets the count', (code) => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 2);
    expect(failTimes(registry, 'files_read', 5, code)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(registry.state('files_read')).toBe('closed');
    failTimes(registry, 'files_read', 2);
    expect(registry.state('files_read')).toBe('closed');
    failTimes(registry, 'files_read', 1);
    expect(registry.state('files_read')).toBe('open');
    registry.stop();
  });

  it('resets the count on a success', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 2);
    expect(registry.record('files_read', undefined)).toBeUndefined();
    failTimes(registry, 'files_read', 2);
    expect(registry.state('files_read')).toBe('closed');
    registry.stop();
  });

  it('becomes half open only once the whole cooldown has passed', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(cooldownMs - 1);
    expect(registry.state('files_read')).toBe('open');
    expect(registry.admit('files_read')).toMatchObject({ admitted: false, state: 'open', retryInMs: 1 });
    vi.advanceTimersByTime(1);
    expect(registry.state('files_read')).toBe('half_open');
    registry.stop();
  });

  it('after the cooldown admits exactly one caller, the probe, and refuses the next', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(cooldownMs);
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    expect(registry.state('files_read')).toBe('probing');
    expect(registry.admit('files_read')).toEqual({ admitted: false, state: 'probing', retryInMs: 0 });
    expect(registry.admit('files_read')).toMatchObject({ admitted: false });
    registry.stop();
  });

  it('closes when the probe succeeds, and admits everyone again', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(cooldownMs);
    registry.admit('files_read');
    expect(registry.record('files_read', undefined)).toEqual({ tool: 'files_read', from: 'probing', to: 'closed' });
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    registry.stop();
  });

  it('closes when the probe fails with a caller’s mistake, since the pool answered', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(cooldownMs);
    registry.admit('files_read');
    expect(registry.record('files_read', fail('NOT_FOUND'))).toEqual({ tool: 'files_read', from: 'probing', to: 'closed' });
    registry.stop();
  });

  it('counts afresh after the probe closes the circuit', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(cooldownMs);
    registry.admit('files_read');
    registry.record('files_read', undefined);
    failTimes(registry, 'files_read', 2);
    expect(registry.state('files_read')).toBe('closed');
    registry.stop();
  });

  it('reopens for a whole new cooldown when the probe fails', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(cooldownMs);
    registry.admit('files_read');
    vi.advanceTimersByTime(30);
    expect(registry.record('files_read', fail('TIMEOUT'))).toEqual({ tool: 'files_read', from: 'probing', to: 'open' });
    expect(registry.admit('files_read')).toEqual({ admitted: false, state: 'open', retryInMs: cooldownMs });
    vi.advanceTimersByTime(cooldownMs - 1);
    expect(registry.state('files_read')).toBe('open');
    vi.advanceTimersByTime(1);
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    registry.stop();
  });

  it('ignores outcomes recorded while open and reports no transition for them', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    vi.advanceTimersByTime(10);
    expect(registry.record('files_read', undefined)).toBeUndefined();
    expect(registry.record('files_read', fail('TIMEOUT'))).toBeUndefined();
    expect(registry.admit('files_read')).toEqual({ admitted: false, state: 'open', retryInMs: cooldownMs - 10 });
    vi.advanceTimersByTime(cooldownMs - 10);
    expect(registry.state('files_read')).toBe('half_open');
    registry.stop();
  });

  // Regression: a call admitted before the circuit opened, answering late while probing, used to decide the probe.
  it('lets only the probe decide while probing, ignoring late results of calls admitted earlier', () => {
    const { registry } = breakers({ failureThreshold: 1 });
    const early = registry.admit('t');
    const opener = registry.admit('t');
    if (!early.admitted || !opener.admitted) throw new Error('both calls should be admitted while closed');
    expect(registry.record('t', fail('TIMEOUT'), opener.ticket)).toMatchObject({ from: 'closed', to: 'open' });
    vi.advanceTimersByTime(cooldownMs);
    const probe = registry.admit('t');
    if (!probe.admitted) throw new Error('the probe should be admitted');
    expect(registry.record('t', fail('TIMEOUT'), early.ticket)).toBeUndefined();
    expect(registry.state('t')).toBe('probing');
    expect(registry.record('t', undefined, probe.ticket)).toMatchObject({ from: 'probing', to: 'closed' });
  });

  it('ignores a stale result after the circuit has closed again', () => {
    const { registry } = breakers({ failureThreshold: 1 });
    const stale = registry.admit('t');
    if (!stale.admitted) throw new Error('admitted while closed');
    registry.record('t', fail('TIMEOUT'));
    vi.advanceTimersByTime(cooldownMs);
    const probe = registry.admit('t');
    if (!probe.admitted) throw new Error('the probe should be admitted');
    registry.record('t', undefined, probe.ticket);
    expect(registry.record('t', fail('TIMEOUT'), stale.ticket)).toBeUndefined();
    expect(registry.state('t')).toBe('closed');
  });

  // Regression: one session's runaway queries timed out until the circuit every session shares opened.
  it('never opens on one session’s timeouts alone, and opens when a second session’s calls time out too', () => {
    const { registry } = breakers();
    for (let i = 0; i < 5; i++) expect(registry.record('db_query', fail('TIMEOUT'), undefined, 'runaway')).toBeUndefined();
    expect(registry.state('db_query')).toBe('closed');
    expect(registry.record('db_query', fail('TIMEOUT'), undefined, 'another')).toEqual({ tool: 'db_query', from: 'closed', to: 'open' });
    registry.stop();
  });

  it('opens on one session’s failures that are the pool’s whatever the call (UNAVAILABLE, INTERNAL)', () => {
    const { registry } = breakers();
    registry.record('db_query', fail('UNAVAILABLE'), undefined, 's1');
    registry.record('db_query', fail('INTERNAL'), undefined, 's1');
    expect(registry.record('db_query', fail('UNAVAILABLE'), undefined, 's1')).toMatchObject({ to: 'open' });
    registry.stop();
  });

  it('gives a probe that was never sent back, so the next call probes instead of the circuit waiting forever', () => {
    const { registry } = breakers({ failureThreshold: 1 });
    registry.record('t', fail('UNAVAILABLE'));
    vi.advanceTimersByTime(cooldownMs);
    const probe = registry.admit('t');
    if (!probe.admitted) throw new Error('the probe should be admitted');
    expect(registry.release('t', probe.ticket)).toEqual({ tool: 't', from: 'probing', to: 'half_open' });
    const next = registry.admit('t');
    expect(next).toMatchObject({ admitted: true, ticket: { probe: true } });
    if (next.admitted) expect(registry.record('t', undefined, next.ticket)).toMatchObject({ from: 'probing', to: 'closed' });
    const closed = registry.admit('t');
    if (closed.admitted) expect(registry.release('t', closed.ticket)).toBeUndefined();
    registry.stop();
  });

  it('keeps one breaker per tool', () => {
    const { registry } = breakers();
    failTimes(registry, 'files_read', 3);
    failTimes(registry, 'db_query', 2);
    expect(registry.admit('files_read')).toMatchObject({ admitted: false, state: 'open' });
    expect(registry.admit('db_query')).toMatchObject({ admitted: true });
    expect(registry.admit('calc_evaluate')).toMatchObject({ admitted: true });
    expect(registry.record('db_query', fail('TIMEOUT'))).toEqual({ tool: 'db_query', from: 'closed', to: 'open' });
    vi.advanceTimersByTime(cooldownMs);
    expect(registry.admit('files_read')).toMatchObject({ admitted: true });
    expect(registry.admit('db_query')).toMatchObject({ admitted: true });
    expect(registry.state('files_read')).toBe('probing');
    expect(registry.state('db_query')).toBe('probing');
    registry.stop();
  });

  it('logs each transition, the half-open moment included', () => {
    const { registry, lines } = breakers({ failureThreshold: 1 });
    registry.record('files_read', fail('UNAVAILABLE'));
    vi.advanceTimersByTime(cooldownMs);
    registry.admit('files_read');
    registry.record('files_read', undefined);
    expect(lines.map(({ level, tool, component }) => ({ level, tool, component }))).toEqual([
      { level: 40, tool: 'files_read', component: 'circuit-breakers' },
      { level: 30, tool: 'files_read', component: 'circuit-breakers' },
      { level: 40, tool: 'files_read', component: 'circuit-breakers' },
    ]);
    expect(lines.map((l) => l.msg)).toEqual([
      'circuit for files_read: closed → open',
      'circuit for files_read: open → half_open (a probe may go through)',
      'circuit for files_read: probing → closed',
    ]);
    registry.stop();
  });

  it('passes the inspect hook to every breaker actor', () => {
    const events: InspectionEvent[] = [];
    const { registry } = breakers({}, (event) => events.push(event));
    registry.record('files_read', fail('TIMEOUT'));
    registry.record('db_query', undefined);
    const ids = new Set(events.map((e) => (e.actorRef as AnyActorRef).id));
    expect(ids).toEqual(new Set(['breaker:files_read', 'breaker:db_query']));
    expect(events.some((e) => e.type === '@xstate.event' && e.event.type === 'breaker.failure')).toBe(true);
    registry.stop();
  });

  it('stops every breaker, cancelling pending cooldowns', () => {
    const { registry } = breakers({ failureThreshold: 1 });
    registry.record('files_read', fail('TIMEOUT'));
    registry.record('db_query', fail('TIMEOUT'));
    expect(vi.getTimerCount()).toBe(2);
    registry.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
