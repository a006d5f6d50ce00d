import { describe, expect, it } from 'vitest';
import { describeEvent, describeOutcome } from '../../cli/progressDisplay.ts';
import type { SessionEvent, SessionFinished } from '../../transport/messages.ts';

const base = { sessionId: 'sess-42', seq: 0, at: '2026-01-01T00:00:00.000Z' };
const long = 'word '.repeat(100).trim();

function finished(overrides: Partial<SessionFinished> = {}): SessionFinished {
  return {
    ...base,
    type: 'session.finished',
    status: 'completed',
    output: 'The answer is 42.',
    stopReason: 'answered',
    steps: 3,
    toolCalls: 2,
    usage: { inputTokens: 12_345, outputTokens: 678, costUsd: 0.0123 },
    traceId: 'trace-abc',
    durationMs: 1_530,
    ...overrides,
  };
}

describe('describeEvent', () => {
  it('describes session.started with the session, agent, model and trace', () => {
    const line = describeEvent({ ...base, type: 'session.started', agent: 'assistant', model: 'gpt-5-mini', task: 'the task', traceId: 'trace-abc' });
    expect(line).toBe('▶ session sess-42 · agent assistant · model gpt-5-mini · trace trace-abc');
  });

  it('describes turn.started with the turn number', () => {
    expect(describeEvent({ ...base, type: 'turn.started', turn: 3 })).toBe('─ turn 3');
  });

  it('describes model.responded with what the model said, the tools it asked for, tokens and cost', () => {
    const line = describeEvent({
      ...base,
      type: 'model.responded',
      turn: 1,
      model: 'scripted',
      content: 'Let me\n  compute   that.',
      toolCalls: [
        { id: 't1', name: 'calc_evaluate', arguments: '{}' },
        { id: 't2', name: 'files_read', arguments: '{}' },
      ],
      finishReason: 'tool_calls',
      usage: { inputTokens: 1_234, outputTokens: 56, costUsd: 0.00123 },
      totals: { inputTokens: 2_000, outputTokens: 100, costUsd: 0.5 },
      durationMs: 80,
    });
    expect(line).toBe(
      '  model scripted "Let me compute that." → calc_evaluate, files_read · 1,234 in / 56 out · $0.00123 (total 2,100 tok, $0.5000)',
    );
  });

  it('leaves out what a model that said nothing and asked for nothing did not do', () => {
    const line = describeEvent({
      ...base, type: 'model.responded', turn: 1, model: 'scripted', content: null, toolCalls: [], finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, totals: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, durationMs: 1,
    });
    expect(line).toBe('  model scripted · 1 in / 1 out · $0.00000 (total 2 tok, $0.00000)');
  });

  it('clips long model text to 160 characters', () => {
    const line = describeEvent({
      ...base, type: 'model.responded', turn: 1, model: 'scripted', content: long, toolCalls: [], finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, totals: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, durationMs: 1,
    });
    const said = /"(.*)"/.exec(line ?? '')?.[1] ?? '';
    expect(said).toHaveLength(160);
    expect(said.endsWith('…')).toBe(true);
    expect(long.startsWith(said.slice(0, -1))).toBe(true);
  });

  it('describes tool.call.rejected with the tool and the clipped reason', () => {
    const line = describeEvent({
      ...base, type: 'tool.call.rejected', turn: 1, toolCallId: 't1', tool: 'unknown_tool',
      failure: { code: 'UNKNOWN_TOOL', message: long, retryable: false },
    });
    expect(line?.startsWith('  ✗ unknown_tool refused before sending: word word')).toBe(true);
    expect(line?.endsWith('…')).toBe(true);
    expect(line?.length).toBe('  ✗ unknown_tool refused before sending: '.length + 160);
  });

  it('describes tool.call.started with the tool and its arguments as JSON, clipped', () => {
    expect(describeEvent({ ...base, type: 'tool.call.started', turn: 1, callId: 'c1', tool: 'calc_evaluate', arguments: { expression: '6 * 7' } })).toBe(
      '  → calc_evaluate {"expression":"6 * 7"}',
    );
    const clipped = describeEvent({ ...base, type: 'tool.call.started', turn: 1, callId: 'c1', tool: 'files_write', arguments: { content: long } });
    expect(clipped?.length).toBe('  → files_write '.length + 160);
    expect(clipped?.endsWith('…')).toBe(true);
  });

  it('describes a successful tool.call.finished with its duration and result', () => {
    expect(
      describeEvent({ ...base, type: 'tool.call.finished', turn: 1, callId: 'c1', tool: 'calc_evaluate', status: 'ok', result: { result: 42 }, durationMs: 7 }),
    ).toBe('  ✓ calc_evaluate 7 ms · {"result":42}');
    expect(describeEvent({ ...base, type: 'tool.call.finished', turn: 1, callId: 'c1', tool: 'calc_evaluate', status: 'ok', durationMs: 7 })).toBe(
      '  ✓ calc_evaluate 7 ms · null',
    );
  });

  it('describes a failed tool.call.finished with its code and message', () => {
    const line = describeEvent({
      ...base, type: 'tool.call.finished', turn: 1, callId: 'c1', tool: 'files_read', status: 'error', durationMs: 3,
      failure: { code: 'NOT_FOUND', message: 'There is no file notes/a.txt.', retryable: false },
    });
    expect(line).toBe('  ✗ files_read 3 ms · NOT_FOUND: There is no file notes/a.txt.');
  });

  // Regression: a model or tool could clear the screen, retitle the window or plant a hidden link through its text.
  it('strips escape sequences and control characters from model and tool text, keeping the words', () => {
    const said = describeEvent({
      ...base, type: 'model.responded', turn: 1, model: 'scripted', content: 'Done.\x1b]0;pwned\x07\x1b[2J\rHidden\x08\x9b31m red\u202e',
      toolCalls: [{ id: 'a', name: 'calc\x1b[31m_evaluate', arguments: '{}' }], finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, totals: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, durationMs: 1,
    });
    expect(said).toBe('  model scripted "Done. Hidden red" → calc_evaluate · 1 in / 1 out · $0.00000 (total 2 tok, $0.00000)');
    const failed = describeEvent({
      ...base, type: 'tool.call.finished', turn: 1, callId: 'c1', tool: 'files_read', status: 'error', durationMs: 3,
      failure: { code: 'NOT_FOUND', message: 'No \x1b]8;;https://evil.example\x1b\\file\x1b]8;;\x1b\\ here.', retryable: false },
    });
    expect(failed).toBe('  ✗ files_read 3 ms · NOT_FOUND: No file here.');
    const result = describeEvent({ ...base, type: 'tool.call.finished', turn: 1, callId: 'c1', tool: 'files_read', status: 'ok', result: { text: 'a\u009b2Jb' }, durationMs: 3 });
    expect(result).toBe('  ✓ files_read 3 ms · {"text":"ab"}');
  });

  it('returns nothing for session.finished, which describeOutcome covers', () => {
    const event: SessionEvent = finished();
    expect(describeEvent(event)).toBeUndefined();
  });
});

describe('describeOutcome', () => {
  it('shows a completed session with its answer, spending, duration and trace', () => {
    expect(describeOutcome(finished()).split('\n')).toEqual([
      '',
      '■ completed',
      '',
      'The answer is 42.',
      '',
      '  steps 3 · tool calls 2 · tokens 12,345 in / 678 out · cost $0.0123 · 1.5 s',
      '  trace trace-abc',
    ]);
  });

  it('shows why a session that ran out of budget stopped, without an empty answer block', () => {
    const text = describeOutcome(
      finished({ status: 'budget_exhausted', stopReason: 'the maxSteps budget (3) is spent', budget: 'maxSteps', output: null, durationMs: 20_000 }),
    );
    expect(text.split('\n')).toEqual([
      '',
      '■ budget_exhausted (the maxSteps budget (3) is spent)',
      '  steps 3 · tool calls 2 · tokens 12,345 in / 678 out · cost $0.0123 · 20.0 s',
      '  trace trace-abc',
    ]);
  });

  // Regression: the final answer reached the terminal as the model wrote it, escape sequences and all.
  it('keeps the answer’s line breaks and tabs but none of its escape sequences or control characters', () => {
    const text = describeOutcome(finished({ output: 'Line one\x1b[1A\x1b[2K\r\nLine\ttwo\x1b]52;c;cHduZWQ=\x07\x00', error: 'bad\x1b[5m', status: 'failed', stopReason: 'x' }));
    expect(text.split('\n').slice(0, 6)).toEqual(['', '■ failed (x)', '  error: bad', '', 'Line one', 'Line\ttwo']);
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  });

  it('shows the error of a failed session', () => {
    const text = describeOutcome(finished({ status: 'failed', stopReason: 'model_error', error: 'the model endpoint returned 500', output: null }));
    expect(text).toContain('■ failed (model_error)');
    expect(text).toContain('  error: the model endpoint returned 500');
  });
});

describe('describeEvent for recovery', () => {
  const failure = { code: 'UNAVAILABLE' as const, message: 'the pool is down', retryable: true };

  it('shows each retry, fallback and circuit change of a tool call', () => {
    expect(describeEvent({ ...base, type: 'tool.call.retrying', turn: 1, callId: 'c', tool: 'db_query', attempt: 2, delayMs: 240.4, failure }))
      .toBe('  ↻ db_query attempt 2 in 240 ms (UNAVAILABLE: the pool is down)');
    expect(describeEvent({ ...base, type: 'tool.call.fallback', turn: 1, callId: 'c', from: 'db_query', to: 'db_replica_query', failure }))
      .toBe('  ⇢ db_query unavailable, falling back to db_replica_query');
    expect(describeEvent({ ...base, type: 'tool.breaker.changed', tool: 'db_query', from: 'closed', to: 'open' })).toBe('  ⚡ circuit for db_query: closed → open');
  });

  it('shows model retries honouring Retry-After, model fallbacks, repairs and loops', () => {
    expect(describeEvent({ ...base, type: 'model.retrying', turn: 2, model: 'gpt-5', attempt: 2, delayMs: 1000, error: 'HTTP 429: slow down', retryAfter: true }))
      .toBe('  ↻ model gpt-5 attempt 2 in 1000 ms (Retry-After): HTTP 429: slow down');
    expect(describeEvent({ ...base, type: 'model.fallback', turn: 2, from: 'gpt-5', to: 'gpt-5-mini', error: 'HTTP 503' }))
      .toBe('  ⇢ model gpt-5 failed, falling back to gpt-5-mini: HTTP 503');
    expect(describeEvent({ ...base, type: 'session.repair', turn: 2, reason: 'empty response', consecutive: 2 }))
      .toBe('  ✎ asking the model to repair its output (2 in a row): empty response');
    expect(describeEvent({ ...base, type: 'loop.detected', turn: 6, action: 'escalate', description: 'You called x 3 times.', evidence: {} }))
      .toBe('  ⟲ loop detected, escalating to a person: You called x 3 times.');
  });

  it('marks a tool result that was summarised and one served by a fallback after retries', () => {
    const line = describeEvent({
      ...base, type: 'tool.call.finished', turn: 1, callId: 'c', tool: 'db_query', status: 'ok', result: { truncated: true },
      durationMs: 12, attempts: 3, servedBy: 'db_replica_query', summarised: true,
    });
    expect(line).toBe('  ✓ db_query (served by db_replica_query) 12 ms after 3 attempts [summarised: too large for the model] · {"truncated":true}');
  });
});

describe('describeEvent for specialists and routing', () => {
  it('shows a routing decision with the model and the reason', () => {
    expect(describeEvent({ ...base, type: 'model.routed', turn: 2, model: 'gpt-5', rule: 'recover', reason: 'recover: turn kind after_tool_failure' }))
      .toBe('  ⤳ model gpt-5 for turn 2 · recover: turn kind after_tool_failure');
  });

  it('indents a specialist\'s events by its depth and marks them with its name', () => {
    const inner = { ...base, sessionId: 'delegation-1', type: 'tool.call.started' as const, turn: 1, callId: 'c', tool: 'db_query', arguments: { sql: 'SELECT 1' } };
    expect(describeEvent({ ...base, type: 'specialist.event', agent: 'analyst', depth: 1, callId: 'd', event: inner }))
      .toBe('    [analyst] → db_query {"sql":"SELECT 1"}');
    expect(describeEvent({ ...base, type: 'specialist.event', agent: 'checker', depth: 2, callId: 'd', event: inner }))
      .toBe('        [checker] → db_query {"sql":"SELECT 1"}');
  });

  it('shows a specialist\'s start with its task and its end with what it spent', () => {
    const started = { ...base, type: 'session.started' as const, agent: 'analyst', model: 'gpt-5-mini', task: 'Count\n the orders.', traceId: 't' };
    expect(describeEvent({ ...base, type: 'specialist.event', agent: 'analyst', depth: 1, callId: 'd', event: started }))
      .toBe('    [analyst] ▶ Count the orders. · model gpt-5-mini');
    const ended = finished({ status: 'budget_exhausted', stopReason: 'budget exhausted: maxTotalTokens', budget: 'maxTotalTokens', usage: { inputTokens: 900, outputTokens: 100, costUsd: 0.002 } });
    expect(describeEvent({ ...base, type: 'specialist.event', agent: 'analyst', depth: 1, callId: 'd', event: ended }))
      .toBe('    [analyst] ◀ budget_exhausted (budget exhausted: maxTotalTokens) · steps 3 · tool calls 2 · 1,000 tok · $0.00200');
  });

  it('says what specialists spent in the closing block', () => {
    const text = describeOutcome(finished({ delegated: { steps: 2, toolCalls: 1, usage: { inputTokens: 1_000, outputTokens: 50, costUsd: 0.001 } } }));
    const lines = text.split('\n');
    const totals = lines.findIndex((l) => l.startsWith('  steps 3'));
    expect(lines[totals + 1]).toBe('  of which specialists: steps 2 · tool calls 1 · tokens 1,000 in / 50 out · cost $0.00100');
    expect(lines[totals + 2]).toBe('  trace trace-abc');
  });
});
