import * as z from 'zod';
import { setup, assign } from 'xstate';
import { TimerDelayMs } from './timerDelay.ts';

export const CircuitBreakerSettings = z.object({
  /** Consecutive failures that open the circuit. */
  failureThreshold: z.number().int().min(1).default(5),
  /** How long an open circuit refuses calls before letting one probe through (a timer: at most 2^31−1 ms). */
  cooldownMs: TimerDelayMs.default(10_000),
});
export type CircuitBreakerSettings = z.infer<typeof CircuitBreakerSettings>;

export type CircuitBreakerEvent =
  | { type: 'breaker.success' }
  /**
   * A failure of the pool. A TIMEOUT names the session whose call timed out (`timedOutFor`): one
   * session's runaway calls are no evidence against the pool, so timeouts alone open the circuit
   * only once they come from two sessions or more.
   */
  | { type: 'breaker.failure'; timedOutFor?: string }
  /** A call is let through while half open: it is the probe, and others wait for its outcome. */
  | { type: 'breaker.probe' }
  /** The probe was never sent (the caller's own request was refused): another call may probe. */
  | { type: 'breaker.release' };

type BreakerContext = CircuitBreakerSettings & {
  consecutiveFailures: number;
  /** The one session whose timeouts are all the current run of failures holds; null otherwise (or when the run is empty). */
  timeoutsOnlyFrom: string | null;
};

/** Who the run of failures would be down to after `event`: one session's timeouts, or anything (null). */
function timeoutsOnlyFromAfter(context: BreakerContext, event: CircuitBreakerEvent): string | null {
  if (event.type !== 'breaker.failure' || event.timedOutFor === undefined) return null;
  if (context.consecutiveFailures === 0) return event.timedOutFor;
  return context.timeoutsOnlyFrom === event.timedOutFor ? event.timedOutFor : null;
}

/**
 * One tool's circuit breaker: `closed` counts consecutive failures; at the threshold it is `open`
 * and calls fail fast (unless the failures are all one session's timeouts: see `breaker.failure`);
 * after the cooldown it is `half_open`, lets one `probing` call through, and that call's outcome
 * closes or reopens it. Outcomes of calls admitted earlier are ignored while open: they say
 * nothing about the pool now.
 */
export const circuitBreakerMachine = setup({
  types: {
    input: {} as CircuitBreakerSettings,
    context: {} as BreakerContext,
    events: {} as CircuitBreakerEvent,
  },
  delays: {
    cooldown: ({ context }) => context.cooldownMs,
  },
  guards: {
    reachesThreshold: ({ context, event }) =>
      context.consecutiveFailures + 1 >= context.failureThreshold && timeoutsOnlyFromAfter(context, event) === null,
  },
  actions: {
    countFailure: assign(({ context, event }) => ({
      consecutiveFailures: context.consecutiveFailures + 1,
      timeoutsOnlyFrom: timeoutsOnlyFromAfter(context, event),
    })),
    reset: assign({ consecutiveFailures: 0, timeoutsOnlyFrom: null }),
  },
}).createMachine({
  id: 'circuitBreaker',
  context: ({ input }) => ({ ...input, consecutiveFailures: 0, timeoutsOnlyFrom: null }),
  initial: 'closed',
  states: {
    closed: {
      on: {
        'breaker.success': { actions: 'reset' },
        'breaker.failure': [{ guard: 'reachesThreshold', target: 'open', actions: 'countFailure' }, { actions: 'countFailure' }],
      },
    },
    open: {
      after: { cooldown: 'half_open' },
    },
    half_open: {
      on: { 'breaker.probe': 'probing' },
    },
    probing: {
      on: {
        'breaker.success': { target: 'closed', actions: 'reset' },
        // The probe alone decides, whoever sent it: the pool had its cooldown.
        'breaker.failure': { target: 'open', actions: 'countFailure' },
        'breaker.release': 'half_open',
      },
    },
  },
});

export const CircuitState = z.enum(['closed', 'open', 'half_open', 'probing']);
export type CircuitState = z.infer<typeof CircuitState>;
