import { nextPhaseTrigger, type PhaseConfig, type PhaseTransition, type WorkflowDefinition } from './workflowDefinition.ts';

/** One phase of a workflow with where it sits: its parent's name (null at the top) and its own config. */
export interface WorkflowPhase {
  name: string;
  parent: string | null;
  config: PhaseConfig;
}

/** Every phase of `workflow`, outer before inner, and the names given twice. */
export function phasesOf(workflow: WorkflowDefinition): { phases: Map<string, WorkflowPhase>; duplicates: string[] } {
  const phases = new Map<string, WorkflowPhase>();
  const duplicates: string[] = [];
  const visit = (states: Record<string, PhaseConfig>, parent: string | null) => {
    for (const [name, config] of Object.entries(states)) {
      if (phases.has(name)) duplicates.push(name);
      else phases.set(name, { name, parent, config });
      if (config.states) visit(config.states, name);
    }
  };
  visit(workflow.states, null);
  return { phases, duplicates };
}

/** `name` and its ancestors, innermost first. */
export function lineageOf(phases: ReadonlyMap<string, WorkflowPhase>, name: string): WorkflowPhase[] {
  const line: WorkflowPhase[] = [];
  for (let at = phases.get(name); at; at = at.parent === null ? undefined : phases.get(at.parent)) line.push(at);
  return line;
}

/** Each transition a phase declares, with the trigger that fires it (`next_phase`, `tool.<name>`, `always`). */
export function transitionsOf(config: PhaseConfig): Array<{ trigger: string; transition: PhaseTransition }> {
  return [
    ...Object.entries(config.on ?? {}).flatMap(([trigger, list]) => list.map((transition) => ({ trigger, transition }))),
    ...(config.always ?? []).map((transition) => ({ trigger: 'always', transition })),
  ];
}

/** The tools a phase offers: the innermost phase of its lineage that names tools; undefined when none does (every tool of the agent). */
export function toolsOfPhase(phases: ReadonlyMap<string, WorkflowPhase>, name: string): string[] | undefined {
  return lineageOf(phases, name).find((phase) => phase.config.tools !== undefined)?.config.tools;
}

/** Whether the tool pattern `wanted` (a name or `<domain>_*`) falls within `patterns`. */
export function toolPatternWithin(wanted: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => pattern === wanted || (pattern.endsWith('*') && wanted.startsWith(pattern.slice(0, -1))));
}

/**
 * What is wrong with a workflow, each problem naming its phase, so the agent is refused when it is
 * loaded rather than a session stuck halfway. `agentTools` are the agent's own (`tools`), when it
 * restricts them. An empty list: the workflow can run.
 */
export function workflowProblems(workflow: WorkflowDefinition, agentTools?: readonly string[], agentGuardrails: readonly string[] = []): string[] {
  const problems: string[] = [];
  const { phases, duplicates } = phasesOf(workflow);
  for (const name of new Set(duplicates)) problems.push(`phase "${name}" is named twice: phase names are unique across the workflow, so transitions can name them plainly`);
  const known = [...phases.keys()];
  const listed = known.join(', ');

  const checkInitial = (owner: string, initial: string | undefined, states: Record<string, PhaseConfig> | undefined, parallel: boolean) => {
    const children = Object.keys(states ?? {});
    if (parallel) {
      if (initial !== undefined) problems.push(`phase "${owner}" is parallel: all its phases start at once, so it has no initial phase`);
      if (children.length < 2) problems.push(`phase "${owner}" is parallel but has ${children.length === 0 ? 'no phases' : 'one phase'}: give it two or more`);
      return;
    }
    if (children.length === 0) {
      if (initial !== undefined) problems.push(`phase "${owner}" has an initial phase ("${initial}") but no phases`);
      return;
    }
    if (initial === undefined) problems.push(`phase "${owner}" has phases (${children.join(', ')}) but no initial one`);
    else if (!children.includes(initial)) problems.push(`${owner === '(workflow)' ? 'the workflow' : `phase "${owner}"`}: its initial phase "${initial}" is not one of its phases (${children.join(', ')})`);
  };
  checkInitial('(workflow)', workflow.initial, workflow.states, false);

  for (const phase of phases.values()) {
    const { name, config } = phase;
    checkInitial(name, config.initial, config.states, config.type === 'parallel');
    for (const { trigger, transition } of transitionsOf(config)) {
      if (!phases.has(transition.target)) problems.push(`phase "${name}": ${trigger} goes to "${transition.target}", which is not a phase (${listed})`);
      if (trigger === 'always' && transition.guard === undefined) problems.push(`phase "${name}": an always transition needs a guard over the ledger, or it would leave at once`);
      if (trigger.startsWith('tool.')) {
        const tool = trigger.slice('tool.'.length);
        const offered = offeredBelow(phases, name);
        if (offered !== undefined && !offered.some((pattern) => toolPatternWithin(tool, [pattern]))) {
          problems.push(`phase "${name}": ${trigger} fires when ${tool} succeeds, but this phase does not offer ${tool} (it offers ${offered.join(', ') || 'no tools'})`);
        }
      }
    }
    for (const tool of config.tools ?? []) {
      if (toolPatternWithin(nextPhaseTrigger, [tool])) problems.push(`phase "${name}": "${tool}" would offer ${nextPhaseTrigger}, which is the session's own: it is offered by itself in phases with exits the model chooses`);
    }
    for (const guardrail of config.guardrails ?? []) {
      if (!agentGuardrails.includes(guardrail)) problems.push(`phase "${name}": guardrail "${guardrail}" is not one of the agent's guardrails (${agentGuardrails.join(', ') || 'it has none'})`);
    }
    if (agentTools !== undefined) {
      for (const tool of config.tools ?? []) {
        if (!toolPatternWithin(tool, agentTools)) problems.push(`phase "${name}": tool "${tool}" is not among the agent's tools (${agentTools.join(', ')})`);
      }
    }
  }

  const canReach = reachable(workflow, phases);
  for (const name of known) {
    if (!canReach.has(name)) problems.push(`phase "${name}" cannot be reached from "${workflow.initial}"`);
  }
  for (const phase of phases.values()) {
    if (phase.config.states) continue;
    if (!hasWayOut(phases, phase.name)) problems.push(`phase "${phase.name}" has no way out: give it a transition, or answer: true to let the session end there`);
  }
  if (![...phases.values()].some((phase) => phase.config.answer)) problems.push('no phase allows a final answer: mark at least one with answer: true, or no session can complete');
  return problems;
}

/** The tools offered in `name` or any phase inside it; undefined when any of them offers every tool. */
function offeredBelow(phases: ReadonlyMap<string, WorkflowPhase>, name: string): string[] | undefined {
  const inside = [...phases.values()].filter((phase) => lineageOf(phases, phase.name).some((p) => p.name === name));
  const all: string[] = [];
  for (const phase of inside) {
    const tools = toolsOfPhase(phases, phase.name);
    if (tools === undefined) return undefined;
    all.push(...tools);
  }
  return all;
}

/** The phases a session can be in: entered at the start, and through any transition of a phase it can be in. */
function reachable(workflow: WorkflowDefinition, phases: ReadonlyMap<string, WorkflowPhase>): Set<string> {
  const seen = new Set<string>();
  const enter = (name: string) => {
    const phase = phases.get(name);
    if (!phase) return;
    // Entering a phase enters its ancestors, and its initial phase (all of a parallel one's).
    for (const ancestor of lineageOf(phases, name)) seen.add(ancestor.name);
    if (seen.has(`>${name}`)) return;
    seen.add(`>${name}`);
    const children = Object.keys(phase.config.states ?? {});
    if (phase.config.type === 'parallel') children.forEach(enter);
    else if (phase.config.initial !== undefined) enter(phase.config.initial);
  };
  enter(workflow.initial);
  for (let grew = true; grew;) {
    grew = false;
    for (const phase of phases.values()) {
      if (!seen.has(phase.name)) continue;
      for (const { transition } of transitionsOf(phase.config)) {
        if (!seen.has(`>${transition.target}`) && phases.has(transition.target)) {
          enter(transition.target);
          grew = true;
        }
      }
    }
  }
  return new Set([...seen].filter((name) => !name.startsWith('>')));
}

/**
 * Whether a session in the leaf phase `name` can leave it or end: a transition of its own or of a
 * phase around it, an answer allowed there, or, inside a parallel phase, a sibling region's
 * transition that leaves the parallel phase.
 */
function hasWayOut(phases: ReadonlyMap<string, WorkflowPhase>, name: string): boolean {
  const line = lineageOf(phases, name);
  if (line.some((phase) => phase.config.answer || transitionsOf(phase.config).length > 0)) return true;
  const parallel = line.find((phase) => phase.config.type === 'parallel');
  if (!parallel) return false;
  const insideParallel = (target: string) => lineageOf(phases, target).some((p) => p.name === parallel.name);
  // Its sibling regions run at the same time: one of them may leave the parallel phase, or end the session with an answer.
  return [...phases.values()].some((phase) => insideParallel(phase.name)
    && (phase.config.answer || transitionsOf(phase.config).some(({ transition }) => !insideParallel(transition.target))));
}

/** The phases each guardrail a phase names checks in (that phase and the phases inside it); a guardrail no phase names is not in the map. */
export function guardrailPhasesOf(workflow: WorkflowDefinition): Map<string, Set<string>> {
  const { phases } = phasesOf(workflow);
  const scopes = new Map<string, Set<string>>();
  for (const phase of phases.values()) {
    for (const guardrail of phase.config.guardrails ?? []) scopes.set(guardrail, (scopes.get(guardrail) ?? new Set()).add(phase.name));
  }
  return scopes;
}
