import type { SessionWorkflow, StatechartGraph } from '../../consoleApi.ts';
import type { StatechartMarks } from './statechartMarks.ts';
import type { TransitionShape } from './statechartLayout.ts';

type PhaseMove = SessionWorkflow['path'][number];

/**
 * Marks a session's place and path on its workflow's drawing, as the loop's are marked: the active
 * phases; every phase it has been in (their outer phases too); for each move, the arrow it took;
 * and the exit that waits for a person's approval, with where it leads. Unlike the loop's, the
 * path needs no guessing: the session records each move with the phases it left and entered.
 * Phases the graph does not know are ignored.
 */
export function workflowMarks(graph: StatechartGraph, transitions: readonly TransitionShape[], workflow: SessionWorkflow): StatechartMarks {
  const parentOf = new Map(graph.nodes.map((node) => [node.id, node.parent]));
  const lineage = (id: string): string[] => {
    const chain: string[] = [];
    for (let at: string | null = id; at !== null && parentOf.has(at); at = parentOf.get(at) ?? null) chain.push(at);
    return chain;
  };
  const known = (ids: readonly string[]) => ids.filter((id) => parentOf.has(id));

  const active = new Set(known(workflow.active));
  const visited = new Set<string>();
  const taken = new Set<string>();
  const visit = (ids: readonly string[]) => {
    for (const id of known(ids)) for (const phase of lineage(id)) visited.add(phase);
  };
  // Where it started: the phases its first move left, or where it still is.
  visit(workflow.path[0]?.from ?? workflow.active);
  for (const move of workflow.path) {
    visit(move.from);
    visit(move.to);
    const arrow = arrowOf(transitions, move.from, move.to, move.trigger);
    if (arrow) taken.add(arrow.id);
  }
  visit(workflow.active);

  const waiting: StatechartMarks['waiting'] = { transitions: new Set(), states: new Set() };
  const pending = workflow.pendingExit;
  if (pending && parentOf.has(pending.to)) {
    waiting.states.add(pending.to);
    const arrow = arrowOf(transitions, workflow.active, [pending.to], 'approval');
    if (arrow) waiting.transitions.add(arrow.id);
  }
  return { active, visited, taken, waiting };
}

/**
 * The arrow a move took: from one of the phases it left to one it entered, by the trigger that
 * fired it where two could have, and from the innermost phase (XState takes the innermost
 * transition that fires).
 */
function arrowOf(transitions: readonly TransitionShape[], from: readonly string[], to: readonly string[], trigger: PhaseMove['trigger']): TransitionShape | undefined {
  const fits = (t: TransitionShape) => t.events.some((event) => triggerOf(event) === (trigger === 'approval' ? 'choice' : trigger));
  const candidates = transitions
    .filter((t) => from.includes(t.source) && to.includes(t.target))
    .sort((a, b) => from.indexOf(b.source) - from.indexOf(a.source));
  return candidates.find(fits) ?? candidates[0];
}

/** What kind of trigger an edge's event is, as the console's workflow graph names them (console/server/sessionWorkflow.ts). */
function triggerOf(event: string): PhaseMove['trigger'] {
  if (event.startsWith('next_phase')) return 'choice';
  if (event.startsWith('tool.')) return 'tool';
  return 'guard';
}
