import * as z from 'zod';
import { setup, assign } from 'xstate';

export const CircuitBreakerSettings = z.object({
  /** Consecutive failures that open the circuit. */
  failureThreshold: z.number().int().min(1).default(5),
  /** How long an open circuit refuses calls before letting one probe through. */
  cooldownMs: z.number().int().positive().default(10_000),
});
export type CircuitBreakerSettings = z.infer<typeof CircuitBreakerSettings>;

export type CircuitBreakerEvent =
  | { type: 'breaker.success' }
  | { type: 'breaker.failure' }
  /** A call is let through while half open: it is the probe, and others wait for its outcome. */
  | { type: 'breaker.probe' };

/**
 * One tool's circuit breaker: `closed` counts consecutive failures; at the threshold it is `open`
 * and calls fail fast; after the cooldown it is `half_open`, lets one `probing` call through, and
 * that call's outcome closes or reopens it. Outcomes of calls admitted earlier are ignored while
 * open: they say nothing about the pool now.
 */
export const circuitBreakerMachine = setup({
  types: {
    input: {} as CircuitBreakerSettings,
    context: {} as CircuitBreakerSettings & { consecutiveFailures: number },
    events: {} as CircuitBreakerEvent,
  },
  delays: {
    cooldown: ({ context }) => context.cooldownMs,
  },
  guards: {
    reachesThreshold: ({ context }) => context.consecutiveFailures + 1 >= context.failureThreshold,
  },
  actions: {
    countFailure: assign({ consecutiveFailures: ({ context }) => context.consecutiveFailures + 1 }),
    reset: assign({ consecutiveFailures: 0 }),
  },
}).createMachine({
  id: 'circuitBreaker',
  context: ({ input }) => ({ ...input, consecutiveFailures: 0 }),
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
        'breaker.failure': { target: 'open', actions: 'countFailure' },
      },
    },
  },
});

export const CircuitState = z.enum(['closed', 'open', 'half_open', 'probing']);
export type CircuitState = z.infer<typeof CircuitState>;
