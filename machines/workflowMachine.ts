import { initialTransition, setup, transition, type StateValue } from 'xstate';
import type { LedgerGuard, PhaseConfig, PhaseTransition, WorkflowDefinition } from './workflowDefinition.ts';
import { lineageOf, phasesOf, toolsOfPhase, transitionsOf, type WorkflowPhase } from './workflowValidation.ts';

/** What the ledger shows since the current phase was entered: what ledger guards are checked against. */
export interface PhaseFacts {
  turnsInPhase: number;
  failedCalls: Record<string, number>;
  succeededCalls: Record<string, number>;
}

/**
 * What moves a workflow: the model's choice among the exits (`approved` once a person approved an
 * exit that needs it), a tool call that succeeded, and the check after each turn (ledger guards).
 */
export type WorkflowEvent =
  | { type: 'workflow.next_phase'; to: string; approved?: boolean }
  | { type: 'workflow.tool_succeeded'; tool: string }
  | { type: 'workflow.check'; facts: PhaseFacts };

const eventOf: Record<string, WorkflowEvent['type']> = { next_phase: 'workflow.next_phase', always: 'workflow.check' };

/** A ledger guard in a few words: `3 failed db_query`, `2 ok calc_evaluate`, `4 turns in the phase`. */
export function ledgerGuardText(guard: LedgerGuard): string {
  switch (guard.type) {
    case 'failedCalls': return `${guard.atLeast} failed ${guard.tool ?? (guard.atLeast === 1 ? 'call' : 'calls')}`;
    case 'succeededCalls': return `${guard.atLeast} ok ${guard.tool}`;
    case 'turnsInPhase': return `${guard.atLeast} turn${guard.atLeast === 1 ? '' : 's'} in the phase`;
  }
}

/**
 * The ledger guard that moves a workflow in the phases of `value` on these facts: the innermost
 * active phase's first `always` transition whose guard holds, as XState picks it.
 */
export function guardThatHolds(workflow: WorkflowDefinition, value: StateValue, facts: PhaseFacts): LedgerGuard | undefined {
  const { phases } = phasesOf(workflow);
  for (const name of activePhasesOf(value).reverse()) {
    const held = phases.get(name)?.config.always?.find((t) => t.guard !== undefined && guardHolds(t.guard, facts));
    if (held?.guard) return held.guard;
  }
  return undefined;
}

function guardHolds(guard: LedgerGuard, facts: PhaseFacts): boolean {
  const count = (byTool: Record<string, number>, tool: string | undefined) => (tool === undefined ? Object.values(byTool).reduce((a, b) => a + b, 0) : byTool[tool] ?? 0);
  switch (guard.type) {
    case 'failedCalls': return count(facts.failedCalls, guard.tool) >= guard.atLeast;
    case 'succeededCalls': return count(facts.succeededCalls, guard.tool) >= guard.atLeast;
    case 'turnsInPhase': return facts.turnsInPhase >= guard.atLeast;
  }
}

const workflowSetup = setup({
  types: { events: {} as WorkflowEvent },
  guards: {
    /** The model chose this exit; one that needs a person's approval fires only once approved. */
    chosen: ({ event }, params: { to: string; requiresApproval: boolean }) =>
      event.type === 'workflow.next_phase' && event.to === params.to && (!params.requiresApproval || event.approved === true),
    succeeded: ({ event }, params: { tool: string; guard: LedgerGuard | null }) => event.type === 'workflow.tool_succeeded' && event.tool === params.tool,
    ledger: ({ event }, params: { guard: LedgerGuard }) => event.type === 'workflow.check' && guardHolds(params.guard, event.facts),
  },
});

/**
 * The workflow as an XState machine: its phases as states (ids are the phase names, so nested and
 * parallel phases behave as in XState), each phase's config in its `meta`, its transitions fired by
 * {@link WorkflowEvent}s. Pure: no actions, no clock.
 */
export function workflowMachineOf(workflow: WorkflowDefinition) {
  const stateOf = (name: string, config: PhaseConfig): Record<string, unknown> => {
    const on: Record<string, unknown[]> = {};
    for (const { trigger, transition: t } of transitionsOf(config)) {
      const type = eventOf[trigger] ?? 'workflow.tool_succeeded';
      const guard = trigger === 'next_phase' ? { type: 'chosen', params: { to: t.target, requiresApproval: t.requiresApproval === true } }
        : trigger === 'always' ? { type: 'ledger', params: { guard: t.guard } }
        : { type: 'succeeded', params: { tool: trigger.slice('tool.'.length), guard: t.guard ?? null } };
      (on[type] ??= []).push({ target: `#${t.target}`, guard, reenter: true });
    }
    return {
      id: name,
      meta: { phase: config },
      ...(config.type === 'parallel' ? { type: 'parallel' } : {}),
      ...(config.initial !== undefined ? { initial: config.initial } : {}),
      ...(config.states ? { states: Object.fromEntries(Object.entries(config.states).map(([child, c]) => [child, stateOf(child, c)])) } : {}),
      on,
    };
  };
  return workflowSetup.createMachine({
    id: 'workflow',
    initial: workflow.initial,
    states: Object.fromEntries(Object.entries(workflow.states).map(([name, config]) => [name, stateOf(name, config)])),
  } as never);
}
export type WorkflowMachine = ReturnType<typeof workflowMachineOf>;

// A session's workflow is the same object from turn to turn (it is part of the context): compiled once.
const compiled = new WeakMap<WorkflowDefinition, WorkflowMachine>();

/** {@link workflowMachineOf}, compiled once per definition. */
export function compiledWorkflow(workflow: WorkflowDefinition): WorkflowMachine {
  let machine = compiled.get(workflow);
  if (!machine) compiled.set(workflow, (machine = workflowMachineOf(workflow)));
  return machine;
}

/** An exit the model may choose in the current phase (offered through `next_phase`). */
export interface PhaseExit {
  to: string;
  requiresApproval: boolean;
  description?: string;
}

/** What the session offers and allows while in a phase. */
export interface PhaseOffer {
  /** The active phases, outermost first. */
  phases: string[];
  /** The tools the model is offered and may call; undefined: every tool of the agent. */
  tools: string[] | undefined;
  /** The active phases' instructions, outermost first. */
  instructions: string[];
  /** The exits the model may choose (`next_phase`); empty when the phase has none. */
  exits: PhaseExit[];
  /** Whether a final answer is accepted here. */
  answerAllowed: boolean;
  model: string | undefined;
  budgets: PhaseConfig['budgets'];
}

/** The phase names a state value is in, outermost first. */
export function activePhasesOf(value: StateValue): string[] {
  if (typeof value === 'string') return [value];
  return Object.entries(value).flatMap(([name, inner]) => [name, ...(inner === undefined ? [] : activePhasesOf(inner as StateValue))]);
}

/** What a session may do in the phases of `value`: tools, instructions, exits, whether it may answer. */
export function phaseOfferOf(workflow: WorkflowDefinition, value: StateValue): PhaseOffer {
  const { phases } = phasesOf(workflow);
  const active = activePhasesOf(value).filter((name) => phases.has(name));
  const leaves = active.filter((name) => !phases.get(name)?.config.states);
  const lineages = leaves.map((leaf) => lineageOf(phases, leaf));
  const around = (lines: WorkflowPhase[][]) => [...new Map(lines.flat().map((p) => [p.name, p])).values()];
  const inScope = around(lineages);
  const toolSets = leaves.map((leaf) => toolsOfPhase(phases, leaf));
  const exits = new Map<string, PhaseExit>();
  for (const phase of inScope) {
    for (const t of phase.config.on?.next_phase ?? ([] as PhaseTransition[])) {
      if (!exits.has(t.target)) exits.set(t.target, { to: t.target, requiresApproval: t.requiresApproval === true, ...(t.description ? { description: t.description } : {}) });
    }
  }
  const innermost = <K extends 'model' | 'budgets'>(key: K) => lineages.flat().find((p) => p.config[key] !== undefined)?.config[key];
  return {
    phases: active,
    tools: toolSets.some((tools) => tools === undefined) ? undefined : [...new Set(toolSets.flat() as string[])],
    instructions: active.flatMap((name) => phases.get(name)?.config.instructions ?? []),
    exits: [...exits.values()],
    answerAllowed: inScope.some((phase) => phase.config.answer === true),
    model: innermost('model') as string | undefined,
    budgets: innermost('budgets') as PhaseConfig['budgets'],
  };
}

/** The state value a new session starts in. */
export function initialPhaseValue(machine: WorkflowMachine): StateValue {
  const [snapshot] = initialTransition(machine);
  return snapshot.value;
}

/**
 * The workflow after `event`, from the phases of `value`: the new value, or the same one when no
 * transition fired (an exit that needs approval and has none yet, a guard that does not hold).
 */
export function advanceWorkflow(machine: WorkflowMachine, value: StateValue, event: WorkflowEvent): { value: StateValue; changed: boolean } {
  const from = machine.resolveState({ value, context: {} } as never);
  const [next] = transition(machine, from, event);
  const changed = JSON.stringify(next.value) !== JSON.stringify(value);
  return { value: next.value, changed };
}
