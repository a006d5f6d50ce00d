import type { ActorSystem } from 'xstate';

// Every actor system XState creates, whatever its actors.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyActorSystem = ActorSystem<any>;

/**
 * What one of a session's actors does: XState's promise-actor function, without the logic around it,
 * so that one provided statechart can run it for every session.
 */
export type SessionStep<TInput, TOutput> = (args: { input: TInput; signal: AbortSignal }) => Promise<TOutput>;

/**
 * Per-actor-system implementations for a statechart provided once per process. Providing a machine
 * builds every state node again, which per session cost about 0.5 ms and 30 KB (issue 15); instead
 * the machine is provided once with implementations that look up the ones of the session (or tool
 * call) they run for, found by the actor system XState gives every action and actor: one per root
 * actor, shared by its children. Held weakly, so an ended session's are collected with it.
 */
export class ActorSystemHooks<THooks extends object> {
  readonly #bySystem = new WeakMap<AnyActorSystem, THooks>();
  readonly #what: string;

  /** `what` names the hooks in the error thrown when a system has none (a host that forgot `attach`). */
  constructor(what: string) {
    this.#what = what;
  }

  /** Gives the actors of `system` their implementations; call it before the root actor starts. */
  attach(system: AnyActorSystem, hooks: THooks): void {
    this.#bySystem.set(system, hooks);
  }

  of(system: AnyActorSystem): THooks {
    const hooks = this.#bySystem.get(system);
    if (!hooks) throw new Error(`No ${this.#what} were attached to this actor system: create the actor, attach them, then start it.`);
    return hooks;
  }
}
