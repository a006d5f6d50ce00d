/** An eventless (`always`) transition: the console's graph names its event `always`; `''` is accepted too. */
export const isEventless = (event: string) => event === '' || event === 'always';

/**
 * How a transition's event reads on the drawn statechart: XState's generated names for actors'
 * ends and delays shortened (`xstate.done.actor.callModel` → `done: callModel`,
 * `xstate.after.5000.session.x` → `after 5000 ms`, `xstate.after.cooldown.breaker.open` →
 * `after cooldown`); an eventless (`always`) transition has none.
 */
export function transitionLabel(event: string): string {
  const done = /^xstate\.done\.actor\.(.+)$/.exec(event);
  if (done) return `done: ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(event);
  if (error) return `error: ${error[1]}`;
  // `xstate.after.<delay>.<state id>`: the delay in ms, or its name (this project names its delays).
  const after = /^xstate\.after\.([^.]+)(?:\.|$)/.exec(event);
  if (after) return /^\d+$/.test(after[1]!) ? `after ${after[1]} ms` : `after ${after[1]}`;
  const doneState = /^xstate\.done\.state\.(.+)$/.exec(event);
  if (doneState) return `done: ${doneState[1]!.split('.').at(-1)}`;
  return event;
}
