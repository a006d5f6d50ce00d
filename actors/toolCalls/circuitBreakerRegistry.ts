import { claimHeldReason } from '../../tools/toolFailure.ts';
import type { Logger } from 'pino';
import { observeBreakerStates } from '../../observability/metrics.ts';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import { circuitBreakerMachine, type CircuitBreakerSettings, type CircuitState } from '../../machines/circuitBreaker.ts';
import { ToolFailureCode, type ToolFailure } from '../../tools/toolFailure.ts';

/** Which circuit a call was admitted under: its outcome counts only for that circuit, never a later one. */
export interface AdmissionTicket {
  readonly generation: number;
  readonly probe: boolean;
}
export type Admission = { admitted: true; ticket: AdmissionTicket } | { admitted: false; state: CircuitState; retryInMs: number };
export interface BreakerTransition {
  tool: string;
  from: CircuitState;
  to: CircuitState;
}

const poolFailures: ReadonlySet<string> = new Set([ToolFailureCode.TIMEOUT, ToolFailureCode.UNAVAILABLE, ToolFailureCode.INTERNAL]);

/**
 * Whether an attempt's failure counts against the tool's circuit, which every session of the
 * orchestrator shares: so one caller's bad calls must never open it for everyone, while a pool
 * that fails many callers must.
 *
 * - The pool's failures count: `UNAVAILABLE` (no worker answers, the call could not be delivered,
 *   the pool cannot run it right now), `INTERNAL` (the tool or the worker broke) and `TIMEOUT`
 *   (no answer in time). A `TIMEOUT` may be the call's own doing (a runaway query), so timeouts
 *   alone open the circuit only when they come from two sessions or more: the registry passes the
 *   session along, and the breaker (`machines/circuitBreaker.ts`) holds that rule.
 * - The caller's failures do not count: `INVALID_INPUT` (bad arguments, a result too large for a
 *   NATS message), `UNKNOWN_TOOL`, `NOT_FOUND`, `FORBIDDEN`, and
 *   `SPECIALIST_FAILED` (the specialist answered; its session did not succeed). Such a reply
 *   proves the pool alive, so it ends a run of failures like a success.
 * - Nor does a call that waited for an earlier attempt of itself (`details.reason` is
 *   `claim_held`: a worker that died mid-call holds its claim until the call's deadline): the pool
 *   answered, about one call.
 * - Not recorded at all: a call refused before it was sent (its request too large to send, its
 *   circuit open): it says nothing about the pool. See {@link CircuitBreakerRegistry.release}.
 */
export function countsAgainstCircuit(failure: ToolFailure | undefined): boolean {
  return failure !== undefined && poolFailures.has(failure.code) && failure.details?.reason !== claimHeldReason;
}

/**
 * One circuit breaker statechart per tool, shared by every session of this orchestrator: a tool
 * that keeps failing fails fast for everyone, and one probe at a time finds out when it is back.
 */
export class CircuitBreakerRegistry {
  readonly #settings: CircuitBreakerSettings;
  readonly #logger: Logger;
  readonly #inspect: ((event: InspectionEvent) => void) | undefined;
  // `generation` counts openings: results of calls admitted before the latest opening are stale.
  readonly #breakers = new Map<string, { actor: Actor<typeof circuitBreakerMachine>; openedAt: number; generation: number }>();

  constructor(settings: CircuitBreakerSettings, logger: Logger, inspect?: (event: InspectionEvent) => void) {
    this.#settings = settings;
    this.#logger = logger.child({ component: 'circuit-breakers' });
    this.#inspect = inspect;
    this.#unobserve = observeBreakerStates(() => [...this.#breakers.keys()].map((tool) => ({ tool, state: this.state(tool) })));
  }

  readonly #unobserve: () => void;

  state(tool: string): CircuitState {
    return (this.#breakers.get(tool)?.actor.getSnapshot().value ?? 'closed') as CircuitState;
  }

  /** Whether a call to `tool` may go out now. In half-open state the admitted call is the probe. */
  admit(tool: string): Admission {
    const breaker = this.#breakerOf(tool);
    const state = breaker.actor.getSnapshot().value as CircuitState;
    if (state === 'closed') return { admitted: true, ticket: { generation: breaker.generation, probe: false } };
    if (state === 'half_open') {
      breaker.actor.send({ type: 'breaker.probe' });
      return { admitted: true, ticket: { generation: breaker.generation, probe: true } };
    }
    return { admitted: false, state, retryInMs: Math.max(0, breaker.openedAt + this.#settings.cooldownMs - Date.now()) };
  }

  /**
   * Records an attempt's outcome; returns the transition it caused, if any. With its admission
   * ticket, a result from before the circuit last opened is ignored, and while probing only the
   * probe's own result decides (a late timeout of an older call says nothing about the pool now).
   * `sessionId` is the caller's: timeouts from one session alone never open the circuit (a
   * timeout of an unnamed caller counts like any pool failure).
   */
  record(tool: string, failure: ToolFailure | undefined, ticket?: AdmissionTicket, sessionId?: string): BreakerTransition | undefined {
    const breaker = this.#breakerOf(tool);
    const from = breaker.actor.getSnapshot().value as CircuitState;
    if (ticket && (ticket.generation !== breaker.generation || (from === 'probing' && !ticket.probe))) return undefined;
    const timedOutFor = failure?.code === ToolFailureCode.TIMEOUT && sessionId !== undefined ? { timedOutFor: sessionId } : {};
    breaker.actor.send(countsAgainstCircuit(failure) ? { type: 'breaker.failure', ...timedOutFor } : { type: 'breaker.success' });
    const to = breaker.actor.getSnapshot().value as CircuitState;
    if (from === to) return undefined;
    if (to === 'open') {
      breaker.openedAt = Date.now();
      breaker.generation += 1;
    }
    this.#logger.warn({ tool, from, to }, `circuit for ${tool}: ${from} → ${to}`);
    return { tool, from, to };
  }

  /**
   * An admitted call that was never sent after all (refused for the caller's own reason): its
   * outcome says nothing about the pool, so nothing is recorded, and a probe's turn is given back
   * so that the next call may probe instead of the circuit waiting for an outcome that never comes.
   */
  release(tool: string, ticket: AdmissionTicket): BreakerTransition | undefined {
    const breaker = this.#breakerOf(tool);
    const from = breaker.actor.getSnapshot().value as CircuitState;
    if (!ticket.probe || ticket.generation !== breaker.generation || from !== 'probing') return undefined;
    breaker.actor.send({ type: 'breaker.release' });
    return { tool, from, to: breaker.actor.getSnapshot().value as CircuitState };
  }

  stop(): void {
    this.#unobserve();
    for (const { actor } of this.#breakers.values()) actor.stop();
  }

  #breakerOf(tool: string) {
    let breaker = this.#breakers.get(tool);
    if (!breaker) {
      const actor = createActor(circuitBreakerMachine, {
        input: this.#settings,
        id: `breaker:${tool}`,
        ...(this.#inspect ? { inspect: this.#inspect } : {}),
      });
      breaker = { actor, openedAt: 0, generation: 0 };
      const entry = breaker;
      // The cooldown ends inside the statechart; log it so the half-open moment is visible too.
      actor.subscribe((snapshot) => {
        if (snapshot.value === 'half_open') this.#logger.info({ tool }, `circuit for ${tool}: open → half_open (a probe may go through)`);
      });
      actor.start();
      this.#breakers.set(tool, entry);
    }
    return breaker;
  }
}
