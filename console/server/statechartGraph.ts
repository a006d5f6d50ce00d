import type { AnyStateMachine, AnyStateNode } from 'xstate';
import type { StatechartGraph } from '../consoleApi.ts';

/**
 * The statechart as the console draws it, read from the machine's own definition: every state node
 * (nested through `parent`) and every transition between them, eventless (`always`) and delayed
 * (`after`) ones included. Drawn from what runs, it cannot drift from the loop.
 */
export function statechartGraphOf(machine: AnyStateMachine): StatechartGraph {
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
        const event = transition.eventType === '' ? 'always' : transition.eventType;
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
 * first, as the graph names them.
 */
export function activeStateIdsOf(machineId: string, value: unknown): string[] {
  const ids: string[] = [];
  const walk = (prefix: string, at: unknown) => {
    if (typeof at === 'string') {
      ids.push(`${prefix}.${at}`);
      return;
    }
    if (at === null || typeof at !== 'object') return;
    for (const [key, inner] of Object.entries(at as Record<string, unknown>)) {
      ids.push(`${prefix}.${key}`);
      walk(`${prefix}.${key}`, inner);
    }
  };
  walk(machineId, value);
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
