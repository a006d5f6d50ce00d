import { describe, expect, it } from 'vitest';
import { statechartGraphOf } from '../../console/server/statechartGraph.ts';
import { isEventless, transitionLabel } from '../../console/app/src/transitionLabel.ts';
import { circuitBreakerMachine } from '../../machines/circuitBreaker.ts';
import { sessionMachine } from '../../machines/session.ts';
import { toolCallMachine } from '../../machines/toolCall.ts';

const eventsOf = (machine: Parameters<typeof statechartGraphOf>[0]) => statechartGraphOf(machine).edges.map((edge) => edge.event);

describe('transitionLabel', () => {
  it('shortens an invoked actor’s end to its id', () => {
    expect(transitionLabel('xstate.done.actor.callModel')).toBe('done: callModel');
    expect(transitionLabel('xstate.error.actor.triageToolCalls')).toBe('error: triageToolCalls');
  });

  it('labels every actor end of the session statechart, and leaves its own events as they are', () => {
    const labels = new Map(eventsOf(sessionMachine).filter((e) => !isEventless(e)).map((e) => [e, transitionLabel(e)]));

    expect(labels.get('xstate.done.actor.rollBack')).toBe('done: rollBack');
    expect(labels.get('xstate.error.actor.manualCall')).toBe('error: manualCall');
    expect(labels.get('session.takeover')).toBe('session.takeover');
    expect([...labels.values()].filter((label) => label.startsWith('xstate.'))).toEqual([]);
  });

  it('shortens a delay given in milliseconds', () => {
    expect(transitionLabel('xstate.after.5000.session.awaiting_approval')).toBe('after 5000 ms');
    expect(transitionLabel('xstate.after.250')).toBe('after 250 ms');
  });

  // Regression: only numeric delays were shortened, and every delay of this project's machines is named.
  it('shortens a named delay to its name', () => {
    const delays = [...eventsOf(circuitBreakerMachine), ...eventsOf(toolCallMachine)].filter((e) => e.startsWith('xstate.after.'));

    expect(delays.length).toBeGreaterThan(0);
    expect(delays.map(transitionLabel).sort()).toEqual(['after cooldown', 'after retryBackoff']);
  });

  it('shortens a compound state’s done event to the state’s key', () => {
    expect(transitionLabel('xstate.done.state.session.validating')).toBe('done: validating');
  });

  it('leaves other events, and look-alikes, as they are', () => {
    expect(transitionLabel('session.cancel')).toBe('session.cancel');
    expect(transitionLabel('xstate.init')).toBe('xstate.init');
    expect(transitionLabel('done.actor.x')).toBe('done.actor.x');
    expect(transitionLabel('xstate.after.')).toBe('xstate.after.');
  });
});

describe('isEventless', () => {
  it('recognises the graph’s `always` and XState’s empty event type, nothing else', () => {
    expect(isEventless('always')).toBe(true);
    expect(isEventless('')).toBe(true);
    expect(isEventless('session.always')).toBe(false);
    expect(isEventless('xstate.done.actor.callModel')).toBe(false);
  });
});
