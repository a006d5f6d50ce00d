import { describe, expect, it } from 'vitest';
import { applyChanges } from '../../console/app/src/sessionsFeed.ts';
import type { SessionSummary } from '../../console/consoleApi.ts';

const row = (sessionId: string, updatedAt: string, state = 'calling_model'): SessionSummary => ({
  sessionId, agent: 'assistant', tenant: null, status: 'running', state, outcome: null, turn: 1, toolCalls: 0,
  inputTokens: 0, outputTokens: 0, costUsd: 0, startedAt: 0, updatedAt, waitingForApproval: 0, task: 't',
});

describe('the sessions table kept current from changes', () => {
  it('replaces changed rows, adds new ones, drops removed ones, newest first, and takes the unreadable list whole', () => {
    const list = { sessions: [row('b', '2026-11-30T10:00:02Z'), row('a', '2026-11-30T10:00:01Z')], unreadable: [{ sessionId: 'x', error: 'bad' }] };
    const next = applyChanges(list, { upserted: [row('a', '2026-11-30T10:00:05Z', 'awaiting_approval'), row('c', '2026-11-30T10:00:03Z')], removed: ['b'], unreadable: [] });
    expect(next.sessions.map((s) => [s.sessionId, s.state])).toEqual([['a', 'awaiting_approval'], ['c', 'calling_model']]);
    expect(next.unreadable).toEqual([]);
    expect(list.sessions).toHaveLength(2);
  });
});
