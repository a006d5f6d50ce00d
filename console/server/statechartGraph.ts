import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';
import type { StatechartGraph } from '../consoleApi.ts';

/** What the console reads of a machine to draw it: its root state node (a machine typed from a config built at run time, as a workflow's is, is no `AnyStateMachine`). */
export type DrawnMachine = Pick<AnyStateMachine, 'id' | 'root'>;

/** How an edge's event reads: XState's event type, `always` for an eventless transition. */
const eventTypeOf = (transition: AnyTransitionDefinition) => (transition.eventType === '' ? 'always' : transition.eventType);

/**
 * The statechart as the console draws it, read from the machine's own definition: every state node
 * (nested through `parent`) and every transition between them, eventless (`always`) and delayed
 * (`after`) ones included. Drawn from what runs, it cannot drift from the loop. `eventOf` names a
 * transition's event where its type alone says too little (a workflow's exits differ by guard);
 * transitions it names apart become edges of their own.
 */
export function statechartGraphOf(machine: DrawnMachine, eventOf: (transition: AnyTransitionDefinition) => string = eventTypeOf): StatechartGraph {
  const nodes: StatechartGraph['nodes'] = [];
  const edges: StatechartGraph['edges'] = [];
  const visit = (node: AnyStateNode, parent: AnyStateNode | null) => {
    const initialTargets = parent?.initial?.target ?? [];
    nodes.push({
      id: node.id,
      key: node.key,
      parent: parent?.id ?? null,
      type: node.type,
      initial: initialTargets.some((target: AnyStateNode) => target.id === node.id),
    });
    const transitions = [...node.transitions.values()].flat().concat(node.always ?? []);
    for (const transition of transitions) {
      for (const target of transition.target ?? []) {
        const event = eventOf(transition);
        const id = `${node.id}->${target.id}:${event}`;
        if (!edges.some((edge) => edge.id === id)) edges.push({ id, source: node.id, target: target.id, event });
      }
    }
    for (const child of Object.values(node.states) as AnyStateNode[]) visit(child, node);
  };
  visit(machine.root, null);
  return { nodes, edges };
}

/**
 * The ids of the active state nodes for a state value (`{ validating: 'routing' }`), outermost
 * first, as the graph names them: read from the machine, since a state given its own id (a
 * workflow's phase) is not named by its path. A state the machine does not have (a checkpoint
 * older than the machine) keeps its path, which the page ignores.
 */
export function activeStateIdsOf(machine: DrawnMachine, value: unknown): string[] {
  const ids: string[] = [];
  const walk = (node: AnyStateNode | undefined, path: string, at: unknown) => {
    const enter = (key: string, inner: unknown) => {
      const child = node?.states[key] as AnyStateNode | undefined;
      const id = child?.id ?? `${path}.${key}`;
      ids.push(id);
      walk(child, child ? id : `${path}.${key}`, inner);
    };
    if (typeof at === 'string') enter(at, undefined);
    else if (at !== null && typeof at === 'object') for (const [key, inner] of Object.entries(at as Record<string, unknown>)) enter(key, inner);
  };
  walk(machine.root, machine.id, value);
  return ids;
}

/** A state value as a dotted path (`validating.routing`); parallel regions joined with `, `. */
export function statePathOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') return '?';
  return Object.entries(value as Record<string, unknown>).map(([key, inner]) => {
    const rest = statePathOf(inner);
    return rest === '?' || (typeof inner === 'object' && inner !== null && Object.keys(inner).length === 0) ? key : `${key}.${rest}`;
  }).join(', ');
}
