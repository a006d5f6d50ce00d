import { describe, expect, it } from 'vitest';
import { createActor, initialTransition, SimulatedClock, transition, type AnyEventObject } from 'xstate';
import { CircuitBreakerSettings, circuitBreakerMachine, type CircuitBreakerEvent } from '../../machines/circuitBreaker.ts';

const settings = (overrides: Partial<CircuitBreakerSettings> = {}) => CircuitBreakerSettings.parse({ failureThreshold: 3, cooldownMs: 1_000, ...overrides });
const success: CircuitBreakerEvent = { type: 'breaker.success' };
const failure: CircuitBreakerEvent = { type: 'breaker.failure' };
const probe: CircuitBreakerEvent = { type: 'breaker.probe' };
// The delayed event XState raises when the `cooldown` delay of `open` elapses.
const cooldownElapsed = { type: 'xstate.after.cooldown.circuitBreaker.open' } as AnyEventObject as CircuitBreakerEvent;

/** Plays `events` through the pure transition function from the initial state. */
function play(events: CircuitBreakerEvent[], input = settings()) {
  let [snapshot] = initialTransition(circuitBreakerMachine, input);
  for (const event of events) [snapshot] = transition(circuitBreakerMachine, snapshot, event);
  return snapshot;
}

function startBreaker(input = settings()) {
  const clock = new SimulatedClock();
  const actor = createActor(circuitBreakerMachine, { input, clock });
  actor.start();
  return { actor, clock, state: () => actor.getSnapshot().value };
}

describe('CircuitBreakerSettings', () => {
  it('defaults to five failures and a ten-second cooldown', () => {
    expect(CircuitBreakerSettings.parse({})).toEqual({ failureThreshold: 5, cooldownMs: 10_000 });
  });

  it('refuses a zero threshold or cooldown', () => {
    expect(CircuitBreakerSettings.safeParse({ failureThreshold: 0 }).success).toBe(false);
    expect(CircuitBreakerSettings.safeParse({ cooldownMs: 0 }).success).toBe(false);
  });

  // Regression: the cooldown is an XState delay, and Node fires a timer longer than 2^31−1 ms at once.
  it('refuses a cooldown longer than a timer can wait, which would half-open the circuit at once', () => {
    expect(CircuitBreakerSettings.safeParse({ cooldownMs: 2_147_483_648 }).error?.issues[0]?.message).toBe(
      'must be at most 2147483647 ms (about 24.8 days), the longest delay a timer can wait',
    );
  });
});

describe('circuitBreakerMachine', () => {
  describe('as a pure transition function', () => {
    it('starts closed with no failures counted', () => {
      const [snapshot, actions] = initialTransition(circuitBreakerMachine, settings());
      expect(snapshot.value).toBe('closed');
      expect(snapshot.context).toEqual({ failureThreshold: 3, cooldownMs: 1_000, consecutiveFailures: 0, timeoutsOnlyFrom: null });
      expect(actions).toEqual([]);
    });

    it('stays closed one failure short of the threshold', () => {
      const snapshot = play([failure, failure]);
      expect(snapshot.value).toBe('closed');
      expect(snapshot.context.consecutiveFailures).toBe(2);
    });

    it('opens at exactly the threshold and schedules the cooldown', () => {
      const before = play([failure, failure]);
      const [opened, actions] = transition(circuitBreakerMachine, before, failure);
      expect(opened.value).toBe('open');
      expect(opened.context.consecutiveFailures).toBe(3);
      expect(actions.map((a) => a.type)).toEqual(['xstate.raise']);
      expect(actions[0]?.params).toMatchObject({ event: cooldownElapsed, delay: 1_000 });
    });

    it('opens on the first failure with a threshold of 1', () => {
      expect(play([failure], settings({ failureThreshold: 1 })).value).toBe('open');
    });

    it('resets the count on a success while closed', () => {
      const snapshot = play([failure, failure, success]);
      expect(snapshot.value).toBe('closed');
      expect(snapshot.context.consecutiveFailures).toBe(0);
      expect(play([failure, failure, success, failure, failure]).value).toBe('closed');
      expect(play([failure, failure, success, failure, failure, failure]).value).toBe('open');
    });

    it('ignores successes, failures and probes while open', () => {
      const opened = play([failure, failure, failure]);
      for (const event of [success, failure, probe]) {
        const [next, actions] = transition(circuitBreakerMachine, opened, event);
        expect(next.value).toBe('open');
        expect(next.context).toEqual(opened.context);
        expect(actions).toEqual([]);
      }
    });

    it('becomes half open when the cooldown elapses', () => {
      expect(play([failure, failure, failure, cooldownElapsed]).value).toBe('half_open');
    });

    it('ignores outcomes while half open: only a probe moves it', () => {
      const halfOpen = play([failure, failure, failure, cooldownElapsed]);
      expect(transition(circuitBreakerMachine, halfOpen, success)[0].value).toBe('half_open');
      expect(transition(circuitBreakerMachine, halfOpen, failure)[0].value).toBe('half_open');
      expect(transition(circuitBreakerMachine, halfOpen, probe)[0].value).toBe('probing');
    });

    it('closes with the count reset when the probe succeeds', () => {
      const snapshot = play([failure, failure, failure, cooldownElapsed, probe, success]);
      expect(snapshot.value).toBe('closed');
      expect(snapshot.context.consecutiveFailures).toBe(0);
    });

    it('reopens with a new cooldown when the probe fails', () => {
      const probing = play([failure, failure, failure, cooldownElapsed, probe]);
      const [reopened, actions] = transition(circuitBreakerMachine, probing, failure);
      expect(reopened.value).toBe('open');
      expect(actions[0]?.params).toMatchObject({ event: cooldownElapsed, delay: 1_000 });
    });

    it('ignores a second probe while one is out', () => {
      const probing = play([failure, failure, failure, cooldownElapsed, probe]);
      expect(transition(circuitBreakerMachine, probing, probe)[0].value).toBe('probing');
    });

    it('is half open again when the probe is given back unsent, so another call may probe', () => {
      const probing = play([failure, failure, failure, cooldownElapsed, probe]);
      expect(transition(circuitBreakerMachine, probing, { type: 'breaker.release' })[0].value).toBe('half_open');
    });
  });

  describe('timeouts, which may be the call’s own doing', () => {
    const timeoutOf = (sessionId: string): CircuitBreakerEvent => ({ type: 'breaker.failure', timedOutFor: sessionId });

    // Regression: one session's runaway queries opened the circuit every session shares.
    it('never opens on the timeouts of one session alone, however many', () => {
      const snapshot = play(Array.from({ length: 10 }, () => timeoutOf('s1')));
      expect(snapshot.value).toBe('closed');
      expect(snapshot.context).toMatchObject({ consecutiveFailures: 10, timeoutsOnlyFrom: 's1' });
    });

    it('opens once timeouts come from a second session: the pool fails more than one caller', () => {
      expect(play([timeoutOf('s1'), timeoutOf('s1'), timeoutOf('s2')]).value).toBe('open');
      expect(play([timeoutOf('s1'), timeoutOf('s2'), timeoutOf('s1')]).value).toBe('open');
    });

    it('opens when one session’s timeouts run with a failure that is the pool’s anyway', () => {
      expect(play([timeoutOf('s1'), timeoutOf('s1'), failure]).value).toBe('open');
      expect(play([failure, timeoutOf('s1'), timeoutOf('s1')]).value).toBe('open');
    });

    it('starts afresh after a success', () => {
      const snapshot = play([timeoutOf('s1'), timeoutOf('s2'), success, timeoutOf('s1'), timeoutOf('s1'), timeoutOf('s1')]);
      expect(snapshot.value).toBe('closed');
      expect(snapshot.context.timeoutsOnlyFrom).toBe('s1');
    });

    it('reopens when the probe times out, whoever sent it', () => {
      const probing = play([failure, failure, failure, cooldownElapsed, probe]);
      expect(transition(circuitBreakerMachine, probing, timeoutOf('s1'))[0].value).toBe('open');
    });
  });

  describe('running on a simulated clock', () => {
    it('opens at exactly failureThreshold consecutive failures', () => {
      const { actor, state } = startBreaker(settings({ failureThreshold: 4 }));
      for (let i = 1; i < 4; i++) {
        actor.send(failure);
        expect(state(), `after ${i} failures`).toBe('closed');
      }
      actor.send(failure);
      expect(state()).toBe('open');
    });

    it('stays open until the cooldown has fully elapsed, then is half open', () => {
      const { actor, clock, state } = startBreaker(settings({ failureThreshold: 1, cooldownMs: 500 }));
      actor.send(failure);
      clock.increment(499);
      expect(state()).toBe('open');
      clock.increment(1);
      expect(state()).toBe('half_open');
    });

    it('stays half open however long no probe comes', () => {
      const { actor, clock, state } = startBreaker(settings({ failureThreshold: 1, cooldownMs: 500 }));
      actor.send(failure);
      clock.increment(500);
      clock.increment(60_000);
      expect(state()).toBe('half_open');
    });

    it('goes from half open to probing to closed when the probe succeeds, and counts afresh', () => {
      const { actor, clock, state } = startBreaker(settings({ failureThreshold: 2, cooldownMs: 500 }));
      actor.send(failure);
      actor.send(failure);
      clock.increment(500);
      actor.send(probe);
      expect(state()).toBe('probing');
      actor.send(success);
      expect(state()).toBe('closed');
      actor.send(failure);
      expect(state()).toBe('closed');
      actor.send(failure);
      expect(state()).toBe('open');
    });

    it('reopens when the probe fails and waits a whole new cooldown', () => {
      const { actor, clock, state } = startBreaker(settings({ failureThreshold: 1, cooldownMs: 500 }));
      actor.send(failure);
      clock.increment(500);
      actor.send(probe);
      clock.increment(10_000);
      expect(state()).toBe('probing');
      actor.send(failure);
      expect(state()).toBe('open');
      clock.increment(499);
      expect(state()).toBe('open');
      clock.increment(1);
      expect(state()).toBe('half_open');
    });

    it('ignores events that arrive while open, so the cooldown is not cut short or restarted', () => {
      const { actor, clock, state } = startBreaker(settings({ failureThreshold: 1, cooldownMs: 500 }));
      actor.send(failure);
      clock.increment(300);
      actor.send(success);
      actor.send(failure);
      actor.send(probe);
      expect(state()).toBe('open');
      clock.increment(200);
      expect(state()).toBe('half_open');
    });
  });
});
