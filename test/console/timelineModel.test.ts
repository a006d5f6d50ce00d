import { describe, expect, it } from 'vitest';
import { buildTimeline, entryCount, type TimelineEntry, type TurnGroup } from '../../console/app/src/timelineModel.ts';
import type { StreamedEvent } from '../../console/app/src/sessionFeed.ts';
import { delegatingSession, refundDeskSession, stamped, streamed, usage } from './sessionStream.ts';

const typesOf = (entries: readonly TimelineEntry[]) => entries.map((entry) => entry.event.type);
const groupOf = (groups: readonly TurnGroup[], turn: number | null) => {
  const group = groups.find((g) => g.turn === turn);
  if (!group) throw new Error(`no group for turn ${turn}`);
  return group;
};
const raw = (events: Array<Record<string, unknown>>): StreamedEvent[] => events.map((event) => ({ event, stateId: null }));

describe('buildTimeline', () => {
  it('groups events by turn, the events before the first turn in a start group', () => {
    const groups = buildTimeline(streamed(delegatingSession()));

    expect(groups.map((g) => g.turn)).toEqual([null, 1, 2]);
    expect(typesOf(groups[0]!.entries)).toEqual(['session.started']);
    expect(typesOf(groupOf(groups, 1).entries)).toEqual(['context.assembled', 'turn.started', 'model.routed', 'model.responded', 'tool.call.started', 'tool.call.finished']);
    expect(typesOf(groupOf(groups, 2).entries)).toEqual(['context.assembled', 'turn.started', 'model.responded', 'session.finished']);
    expect(groups.map((g) => g.started)).toEqual([false, true, true]);
  });

  it('lets a turn.started join the group its turn’s earlier events opened', () => {
    const events = stamped('s-1', [
      { type: 'session.started', agent: 'a', model: 'm', task: 't', traceId: 'a'.repeat(32) },
      { type: 'context.assembled', turn: 1, model: 'm', contextWindow: 8000, tokenizer: 'o200k_base', breakdown: { system: 1, tools: 0, task: 1, ledger: 0, summary: 0, history: 0, outputHeadroom: 10, total: 2, limit: 7990 } },
      { type: 'turn.started', turn: 1 },
    ]);

    const groups = buildTimeline(streamed(events));

    expect(groups).toHaveLength(2);
    expect(groups[1]).toMatchObject({ turn: 1, started: true });
    expect(typesOf(groups[1]!.entries)).toEqual(['context.assembled', 'turn.started']);
  });

  it('nests a specialist’s events under the call that delegated to it, at every depth', () => {
    const turn1 = groupOf(buildTimeline(streamed(delegatingSession())), 1);

    const research = turn1.entries.find((e) => e.event.type === 'tool.call.started')!;
    expect(research.specialist).toBeNull();
    expect(typesOf(research.delegated)).toEqual(['session.started', 'model.responded', 'tool.call.started', 'tool.call.finished', 'session.finished']);
    expect(research.delegated.every((e) => e.specialist?.agent === 'researcher' && e.specialist.depth === 1 && e.specialist.callId === 'call-research')).toBe(true);

    const analyse = research.delegated.find((e) => e.event.type === 'tool.call.started')!;
    expect(typesOf(analyse.delegated)).toEqual(['model.responded', 'session.finished']);
    expect(analyse.delegated.map((e) => e.specialist)).toEqual([
      { agent: 'analyst', depth: 2, callId: 'call-analyse' },
      { agent: 'analyst', depth: 2, callId: 'call-analyse' },
    ]);
    // The entry shows the relayed (inner) event, keyed by the outer event's seq.
    expect(analyse.delegated[0]!.event.sessionId).toBe('analyst-session');
    expect(analyse.delegated[0]!.key).toBe('9');
  });

  it('sums the turn’s own model calls and its specialists’ apart, and the cost up to each turn', () => {
    const groups = buildTimeline(streamed(delegatingSession()));
    const turn1 = groupOf(groups, 1);

    expect(turn1.usage).toEqual(usage(1000, 50, 0.002));
    expect(turn1.delegatedUsage.inputTokens).toBe(600);
    expect(turn1.delegatedUsage.outputTokens).toBe(30);
    expect(turn1.delegatedUsage.costUsd).toBeCloseTo(0.0015, 10);
    expect(groupOf(groups, 2).usage).toEqual(usage(1500, 40, 0.004));
    expect(groupOf(groups, 2).delegatedUsage).toEqual(usage(0, 0, 0));
    // session.finished carries the session's totals: they are not counted again.
    expect(groups.map((g) => g.cumulativeCostUsd)).toEqual([0, expect.closeTo(0.0035, 10), expect.closeTo(0.0075, 10)]);
  });

  it('keeps a specialist’s event whose delegating call is not on the timeline at the top level', () => {
    const events = stamped('s-1', [
      { type: 'turn.started', turn: 3 },
      {
        type: 'specialist.event', agent: 'researcher', depth: 1, callId: 'call-from-before',
        event: { type: 'model.responded', sessionId: 'r', seq: 7, at: '2025-01-15T09:30:00.000Z', turn: 1, model: 'm', content: 'x', toolCalls: [], finishReason: 'stop', usage: usage(10, 1, 0.25), totals: usage(10, 1, 0.25), durationMs: 5 },
      },
    ], 40);

    const [group] = buildTimeline(streamed(events));

    expect(group!.entries.map((e) => [e.event.type, e.specialist?.agent ?? null])).toEqual([['turn.started', null], ['model.responded', 'researcher']]);
    expect(group!.delegatedUsage.costUsd).toBe(0.25);
  });

  it('starts a group of its own at every turn.started, even for a turn already seen', () => {
    const events = stamped('s-1', [
      { type: 'turn.started', turn: 2 },
      { type: 'session.interrupted', turn: 2 },
      { type: 'turn.started', turn: 2 },
    ]);

    const groups = buildTimeline(streamed(events));

    expect(groups.map((g) => [g.turn, typesOf(g.entries)])).toEqual([
      [2, ['turn.started', 'session.interrupted']],
      [2, ['turn.started']],
    ]);
    expect(new Set(groups.map((g) => g.key)).size).toBe(2);
  });

  it('opens a group for a later turn without its turn.started (a resumed session announces none)', () => {
    const events = stamped('s-1', [
      { type: 'session.resumed', owner: 'orchestrator-2', state: 'running_tools', resentToolCalls: [{ callId: 'c-4', tool: 'lookup' }] },
      { type: 'tool.call.finished', turn: 4, callId: 'c-4', tool: 'lookup', status: 'ok', result: 1, durationMs: 3 },
      { type: 'model.responded', turn: 5, model: 'm', content: 'done', toolCalls: [], finishReason: 'stop', usage: usage(1, 1, 0.01), totals: usage(1, 1, 0.01), durationMs: 1 },
    ]);

    const groups = buildTimeline(streamed(events));

    expect(groups.map((g) => [g.turn, g.started, typesOf(g.entries)])).toEqual([
      [null, false, ['session.resumed']],
      [4, false, ['tool.call.finished']],
      [5, false, ['model.responded']],
    ]);
  });

  it('does not open a group for an interruption before the first turn (turn 0)', () => {
    const events = stamped('s-1', [
      { type: 'session.started', agent: 'a', model: 'm', task: 't', traceId: 'a'.repeat(32) },
      { type: 'session.interrupted', turn: 0 },
    ]);

    const groups = buildTimeline(streamed(events));

    expect(groups.map((g) => [g.turn, typesOf(g.entries)])).toEqual([[null, ['session.started', 'session.interrupted']]]);
  });

  it('keeps events of unknown types, without a type, and a specialist.event without an inner event', () => {
    const groups = buildTimeline(raw([
      { type: 'turn.started', turn: 1, seq: 0 },
      { type: 'tool.call.cancelled', turn: 1, seq: 1, callId: 'c-1' },
      { seq: 2, note: 'no type at all' },
      { type: 'specialist.event', seq: 3, agent: 'researcher', depth: 1, callId: 'c-1', event: 'not an object' },
    ]));

    expect(groups).toHaveLength(1);
    expect(groups[0]!.entries.map((e) => e.key)).toEqual(['0', '1', '2', '3']);
    expect(groups[0]!.entries[3]!.specialist).toBeNull();
    expect(groups[0]!.entries[3]!.event.event).toBe('not an object');
  });

  it('keys events without a seq by their position, so keys stay unique', () => {
    const groups = buildTimeline(raw([{ type: 'turn.started', turn: 1 }, { type: 'model.retrying', turn: 1 }, { type: 'turn.started', turn: 2, seq: 5 }]));

    expect(groups.flatMap((g) => g.entries.map((e) => e.key))).toEqual(['i0', 'i1', '5']);
  });

  it('counts a model call with no usage as nothing', () => {
    const groups = buildTimeline(raw([{ type: 'model.responded', turn: 1, seq: 0 }, { type: 'model.responded', turn: 1, seq: 1, usage: { costUsd: 0.5 } }]));

    expect(groups[0]!.usage).toEqual(usage(0, 0, 0.5));
  });

  // The host publishes a move once the next model call has begun: it opens the turn that runs in the new phase.
  it('shows each move between workflow phases where it came, at the start of the turn that runs in the new phase', () => {
    const groups = buildTimeline(streamed(refundDeskSession()));

    expect(typesOf(groupOf(groups, 2).entries)).toEqual(['context.assembled', 'turn.started', 'model.responded']);
    expect(typesOf(groupOf(groups, 3).entries).slice(0, 3)).toEqual(['context.assembled', 'workflow.transitioned', 'turn.started']);
    expect(typesOf(groupOf(groups, 6).entries).slice(-2)).toEqual(['approval.requested', 'approval.decided']);
    expect(typesOf(groupOf(groups, 7).entries).slice(0, 3)).toEqual(['context.assembled', 'workflow.transitioned', 'turn.started']);
    expect(groups.map((g) => g.turn)).toEqual([null, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('answers no groups for no events', () => {
    expect(buildTimeline([])).toEqual([]);
  });
});

describe('entryCount', () => {
  it('counts the delegated events at every depth', () => {
    const groups = buildTimeline(streamed(delegatingSession()));

    expect(entryCount(groupOf(groups, 1).entries)).toBe(13);
    expect(groups.reduce((sum, g) => sum + entryCount(g.entries), 0)).toBe(delegatingSession().length);
  });
});
