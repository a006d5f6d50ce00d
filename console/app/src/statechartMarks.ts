import type { StatechartGraph } from '../../consoleApi.ts';
import { anyState, type TransitionShape } from './statechartLayout.ts';
import { isEventless } from './transitionLabel.ts';

/** Which parts of the drawn statechart to mark for one session. */
export interface StatechartMarks {
  /** The active states, by the graph's ids. */
  active: Set<string>;
  /** States the session has been in (their ancestors included), the active ones too. */
  visited: Set<string>;
  /** Transitions the session took, as far as its events show. */
  taken: Set<string>;
  /** A transition the session would take once a person approves it, and where it leads (a workflow's exit): none for the loop. */
  waiting: { transitions: Set<string>; states: Set<string> };
}

const bridgeHops = 6;

/**
 * Marks a session's place and path on the statechart. State ids are matched leniently (the
 * graph's id, or a dotted path under the root such as `validating.routing`), and ids the graph
 * does not know are ignored. Between two consecutive states of the path with no direct
 * transition, the shortest route through automatic transitions (eventless, or an actor's done or
 * error) is assumed: the session passed through those states (`routing`, `triaged`) without an
 * event of its own. A route through an operator's or the outside's event is never assumed.
 */
export function statechartMarks(graph: StatechartGraph, transitions: TransitionShape[], activeStateIds: readonly string[], path: readonly string[]): StatechartMarks {
  const resolve = stateResolver(graph);
  const parentOf = new Map(graph.nodes.map((node) => [node.id, node.parent]));
  const lineage = (id: string): string[] => {
    const chain = [id];
    for (let parent = parentOf.get(id) ?? null; parent !== null && parentOf.has(parent); parent = parentOf.get(parent) ?? null) chain.push(parent);
    return chain;
  };
  const initialChild = new Map<string, string>();
  for (const node of graph.nodes) if (node.initial && node.parent !== null) initialChild.set(node.parent, node.id);
  const entered = (id: string): string => {
    let state = id;
    while (initialChild.has(state)) state = initialChild.get(state)!;
    return state;
  };

  const active = new Set(activeStateIds.map(resolve).filter((id): id is string => id !== null));
  const visited = new Set<string>();
  const taken = new Set<string>();
  const steps: string[] = [];
  for (const id of path.map(resolve)) if (id !== null && steps.at(-1) !== id) steps.push(id);
  // A compound state on the path was entered at its initial child: that child was visited too.
  for (const id of [...steps.map(entered), ...active]) for (const state of lineage(id)) visited.add(state);

  // The transitions out of a state: its own and its ancestors', and those any state takes.
  const outOf = (state: string) => {
    const sources = new Set([...lineage(state), anyState]);
    return transitions.filter((t) => sources.has(t.source) && t.target !== anyState);
  };
  for (let i = 1; i < steps.length; i++) {
    // A compound state on the path (`validating`) was entered at its initial child.
    const from = entered(steps[i - 1]!);
    const to = steps[i]!;
    const direct = outOf(from).find((t) => lineage(to).includes(t.target));
    if (direct) {
      taken.add(direct.id);
      continue;
    }
    const route = shortestRoute(from, to, (state) => outOf(state).filter(automatic), entered, lineage);
    for (const t of route ?? []) {
      taken.add(t.id);
      for (const state of lineage(entered(t.target))) visited.add(state);
    }
  }
  return { active, visited, taken, waiting: { transitions: new Set(), states: new Set() } };
}

const automatic = (t: TransitionShape) => t.source !== anyState && t.events.some((event) => isEventless(event) || event.startsWith('xstate.'));

function shortestRoute(
  from: string,
  to: string,
  outOf: (state: string) => TransitionShape[],
  entered: (id: string) => string,
  lineage: (id: string) => string[],
): TransitionShape[] | null {
  let frontier: Array<{ state: string; route: TransitionShape[] }> = [{ state: from, route: [] }];
  const seen = new Set([from]);
  for (let hop = 0; hop < bridgeHops; hop++) {
    const next: typeof frontier = [];
    for (const { state, route } of frontier) {
      for (const transition of outOf(state)) {
        if (lineage(to).includes(transition.target)) return [...route, transition];
        const reached = entered(transition.target);
        if (seen.has(reached)) continue;
        seen.add(reached);
        next.push({ state: reached, route: [...route, transition] });
      }
    }
    frontier = next;
  }
  return null;
}

/** Finds the graph's id for a state named by its id or by its dotted path under the root; null when none. */
export function stateResolver(graph: StatechartGraph): (name: string) => string | null {
  const ids = new Set(graph.nodes.map((node) => node.id));
  const roots = graph.nodes.filter((node) => node.parent === null).map((node) => node.id);
  return (name) => {
    if (ids.has(name)) return name;
    for (const root of roots) if (ids.has(`${root}.${name}`)) return `${root}.${name}`;
    for (const id of ids) if (id.endsWith(`.${name}`)) return id;
    return null;
  };
}
