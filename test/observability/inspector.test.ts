import { describe, expect, it } from 'vitest';
import { hideContent } from '../../observability/inspector.ts';

describe('hideContent', () => {
  it('hides what people and models wrote, wherever it sits, and keeps states, ids, usage and counts', () => {
    const event = {
      type: '@xstate.snapshot',
      snapshot: {
        value: 'running_tools',
        context: {
          sessionId: 's-1', task: 'secret task', conversation: [{ role: 'user', content: 'secret' }], turn: 3, usage: { inputTokens: 10, outputTokens: 2, costUsd: 0.1 },
          summary: { text: 'secret summary', throughIndex: 4, throughTurn: 2 },
          outcomes: { c1: { status: 'error', failure: { code: 'SPECIALIST_FAILED', details: { partialAnswer: 'secret partial', status: 'failed' } } } },
          interventions: [{ turn: 2, kind: 'answered', detail: 'secret answer' }],
        },
      },
    };
    const hidden = hideContent(event);
    const text = JSON.stringify(hidden);
    for (const secret of ['secret task', 'secret summary', 'secret partial', 'secret answer', '"secret"']) expect(text).not.toContain(secret);
    expect(hidden).toMatchObject({
      snapshot: { value: 'running_tools', context: { sessionId: 's-1', turn: 3, usage: { inputTokens: 10 }, interventions: [{ turn: 2, kind: 'answered' }] } },
    });
    expect((hidden as { snapshot: { context: { conversation: string } } }).snapshot.context.conversation).toMatch(/^\(1 items \(hidden/);
  });

  it('leaves anything without content as it is, and stops at a sane depth', () => {
    expect(hideContent({ a: 1, b: [true, null] })).toEqual({ a: 1, b: [true, null] });
    let deep: Record<string, unknown> = { task: 'x' };
    for (let i = 0; i < 30; i++) deep = { inner: deep };
    expect(() => hideContent(deep)).not.toThrow();
  });
});
