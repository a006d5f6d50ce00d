import { beforeAll, describe, expect, it } from 'vitest';
import type { StatechartGraph } from '../../console/consoleApi.ts';
import { activeStateIdsOf, statechartGraphOf } from '../../console/server/statechartGraph.ts';
import { anyState, layOutStatechart, type TransitionShape } from '../../console/app/src/statechartLayout.ts';
import { statechartMarks, stateResolver, type StatechartMarks } from '../../console/app/src/statechartMarks.ts';
import { sessionMachine } from '../../machines/session.ts';
import { delegatingSession, refundDeskSession, stamped, streamed, usage } from './sessionStream.ts';

const graph = statechartGraphOf(sessionMachine);

// The marks use the transitions as laid out (merged, the root's from "any state"), not where they are drawn: no ELK needed.
const transitionsOf = async (g: StatechartGraph) => (await layOutStatechart(g, async (elkGraph) => elkGraph, (text) => text.length * 7)).transitions;

/** `preparing→calling_model` for each taken transition, without the machine's id. */
const takenOf = (marks: StatechartMarks, transitions: readonly TransitionShape[]) =>
  transitions.filter((t) => marks.taken.has(t.id)).map((t) => `${short(t.source)}→${short(t.target)}`).sort();
const short = (id: string) => (id === anyState ? 'any' : id.replace(/^session\./, ''));
const shortSet = (ids: Set<string>) => [...ids].map(short).sort();
const pathOf = (...states: string[]) => states.map((s) => `session.${s}`);

describe('statechartMarks', () => {
  let transitions: TransitionShape[];
  beforeAll(async () => {
    transitions = await transitionsOf(graph);
  });

  it('follows a session through its turns, from the states its events mark, filling in the automatic steps', () => {
    const events = streamed(delegatingSession());
    const path = events.map((e) => e.stateId).filter((id): id is string => id !== null);

    const marks = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'completed'), path);

    expect(shortSet(marks.active)).toEqual(['completed']);
    expect(takenOf(marks, transitions)).toEqual([
      'calling_model→validating',
      'observing→preparing',
      'preparing→calling_model',
      'running_tools→observing',
      'validating.routing→completed',
      'validating.routing→validating.triaging_tool_calls',
      'validating.triaged→running_tools',
      'validating.triaging_tool_calls→validating.triaged',
    ]);
    expect(shortSet(marks.visited)).toEqual([
      'calling_model', 'completed', 'observing', 'preparing', 'running_tools', 'session',
      'validating', 'validating.routing', 'validating.triaged', 'validating.triaging_tool_calls',
    ]);
  });

  it('marks the initial child of a compound state on the path as visited, so no taken arrow starts at an unvisited state', () => {
    const marks = statechartMarks(graph, transitions, [], pathOf('calling_model', 'validating', 'completed'));

    expect(takenOf(marks, transitions)).toEqual(['calling_model→validating', 'validating.routing→completed']);
    expect(marks.visited.has('session.validating.routing')).toBe(true);
    for (const t of transitions.filter((t) => marks.taken.has(t.id))) expect(marks.visited.has(t.source), t.source).toBe(true);
  });

  it('follows a workflow’s session into awaiting_phase_approval at a turn’s end, and out to preparing once the move is approved', () => {
    const pathOf = (events: ReturnType<typeof streamed>) => events.map((e) => e.stateId).filter((id): id is string => id !== null);

    const waiting = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'awaiting_phase_approval'), pathOf(streamed(refundDeskSession({ untilWaiting: true }))));
    expect(shortSet(waiting.active)).toEqual(['awaiting_phase_approval']);
    expect(takenOf(waiting, transitions)).toContain('observing→awaiting_phase_approval');
    expect(takenOf(waiting, transitions)).not.toContain('awaiting_phase_approval→preparing');

    const approved = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'completed'), pathOf(streamed(refundDeskSession())));
    expect(takenOf(approved, transitions)).toEqual(expect.arrayContaining(['observing→awaiting_phase_approval', 'awaiting_phase_approval→preparing', 'validating.routing→completed']));
  });

  it('bridges a gap through an actor’s end and eventless transitions, entering a compound state at its initial child', () => {
    // An approval asked for right after the model call: its response's own event is missing.
    const marks = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'awaiting_approval'), pathOf('calling_model', 'awaiting_approval'));

    expect(takenOf(marks, transitions)).toEqual([
      'calling_model→validating',
      'validating.routing→validating.triaging_tool_calls',
      'validating.triaged→awaiting_approval',
      'validating.triaging_tool_calls→validating.triaged',
    ]);
    expect(shortSet(marks.visited)).toEqual(['awaiting_approval', 'calling_model', 'session', 'validating', 'validating.routing', 'validating.triaged', 'validating.triaging_tool_calls']);
  });

  it('takes an actor’s error transition when that is the way the session went', () => {
    const marks = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'failed'), pathOf('preparing', 'calling_model', 'validating', 'validating.triaging_tool_calls', 'failed'));

    expect(takenOf(marks, transitions)).toEqual([
      'calling_model→validating',
      'preparing→calling_model',
      'validating.routing→validating.triaging_tool_calls',
      'validating.triaging_tool_calls→failed',
    ]);
  });

  it('never assumes a route through an operator’s event', () => {
    // Interrupted, then the next turn: the `session.continue` that resumed it marks no state.
    const marks = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'calling_model'), pathOf('interrupted', 'calling_model'));

    expect(takenOf(marks, transitions)).toEqual([]);
    expect(marks.visited.has('session.preparing')).toBe(false);
  });

  it('takes an operator’s transition the path shows directly, the root’s from any state included', () => {
    const redirected = statechartMarks(graph, transitions, [], pathOf('interrupted', 'preparing'));
    expect(takenOf(redirected, transitions)).toEqual(['interrupted→preparing']);

    const cancelled = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, 'cancelled'), pathOf('running_tools', 'cancelled'));
    expect(takenOf(cancelled, transitions)).toEqual(['any→cancelled']);

    const handedBack = statechartMarks(graph, transitions, [], pathOf('manual', 'preparing'));
    expect(takenOf(handedBack, transitions)).toEqual(['manual→preparing']);
  });

  it('marks the active states with their ancestors as visited', () => {
    const marks = statechartMarks(graph, transitions, activeStateIdsOf(sessionMachine, { manual: 'executing' }), []);

    expect(shortSet(marks.active)).toEqual(['manual', 'manual.executing']);
    expect(shortSet(marks.visited)).toEqual(['manual', 'manual.executing', 'session']);
    expect(marks.taken.size).toBe(0);
  });

  it('reads states named by dotted path or by key, and ignores ids the graph does not know', () => {
    const marks = statechartMarks(graph, transitions, ['validating.triaged', 'no_such_state'], ['calling_model', 'session.nowhere', 'validating', 'running_tools']);

    expect(shortSet(marks.active)).toEqual(['validating.triaged']);
    expect(takenOf(marks, transitions)).toEqual([
      'calling_model→validating',
      'validating.routing→validating.triaging_tool_calls',
      'validating.triaged→running_tools',
      'validating.triaging_tool_calls→validating.triaged',
    ]);
    expect(marks.visited.has('session.nowhere')).toBe(false);
  });

  it('treats repeated states on the path as one step', () => {
    const events = streamed(stamped('s-1', [
      { type: 'turn.started', turn: 1 },
      { type: 'model.retrying', turn: 1, model: 'm', attempt: 2, delayMs: 500, error: 'rate limited', retryAfter: true },
      { type: 'model.responded', turn: 1, model: 'm', content: 'hi', toolCalls: [], finishReason: 'stop', usage: usage(1, 1, 0), totals: usage(1, 1, 0), durationMs: 1 },
    ]));

    const marks = statechartMarks(graph, transitions, [], events.map((e) => e.stateId!));

    expect(takenOf(marks, transitions)).toEqual(['calling_model→validating']);
  });

  it('gives up on a gap longer than six automatic transitions', async () => {
    const chain = (length: number): StatechartGraph => ({
      nodes: [
        { id: 'm', key: 'm', parent: null, type: 'compound', initial: false },
        ...Array.from({ length }, (_, i) => ({ id: `m.s${i}`, key: `s${i}`, parent: 'm', type: 'atomic' as const, initial: i === 0 })),
      ],
      edges: Array.from({ length: length - 1 }, (_, i) => ({ id: `m.s${i}->m.s${i + 1}:always`, source: `m.s${i}`, target: `m.s${i + 1}`, event: 'always' })),
    });
    const g = chain(8);
    const chainTransitions = await transitionsOf(g);

    expect(statechartMarks(g, chainTransitions, [], ['s0', 's6']).taken.size).toBe(6);
    const tooFar = statechartMarks(g, chainTransitions, [], ['s0', 's7']);
    expect(tooFar.taken.size).toBe(0);
    expect(tooFar.visited.has('m.s3')).toBe(false);
  });
});

describe('stateResolver', () => {
  const resolve = stateResolver(graph);

  it('finds a state by its id, its dotted path under the root, or its key', () => {
    expect(resolve('session.validating.triaged')).toBe('session.validating.triaged');
    expect(resolve('validating.triaged')).toBe('session.validating.triaged');
    expect(resolve('triaged')).toBe('session.validating.triaged');
    expect(resolve('idle')).toBe('session.manual.idle');
    expect(resolve('session')).toBe('session');
  });

  it('answers null for a name the graph does not know', () => {
    expect(resolve('nowhere')).toBeNull();
    expect(resolve('')).toBeNull();
    expect(resolve('aged')).toBeNull();
  });
});
