import type { AnyTransitionDefinition } from 'xstate';
import type { LedgerGuard, WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import { compiledWorkflow, ledgerGuardText } from '../../machines/workflowMachine.ts';
import type { SessionPhase } from '../../machines/workflowSteps.ts';
import type { SessionWorkflow, StatechartGraph } from '../consoleApi.ts';
import { activeStateIdsOf, statechartGraphOf } from './statechartGraph.ts';

/**
 * Where a session is in its agent's workflow, as the console shows it: the workflow drawn from the
 * machine the session runs it with, the active phases, every move so far and the exit that waits
 * for a person. Null for a session without a workflow (and for a checkpoint from before them).
 */
export function sessionWorkflowOf(workflow: WorkflowDefinition | null | undefined, phase: SessionPhase | null | undefined): SessionWorkflow | null {
  if (!workflow) return null;
  const machine = compiledWorkflow(workflow);
  return {
    graph: workflowGraphOf(workflow),
    active: phase ? activeStateIdsOf(machine, phase.value) : [],
    path: (phase?.path ?? []).map((move) => ({
      turn: move.turn, from: move.from, to: move.to, trigger: move.trigger,
      ...(move.detail !== undefined ? { detail: move.detail } : {}), ...(move.by !== undefined ? { by: move.by } : {}),
    })),
    pendingExit: phase?.pendingExit ? { to: phase.pendingExit.to, reason: phase.pendingExit.reason } : null,
  };
}

/** The workflow as a statechart: its phases (ids are their names) and each way out of them, named by what fires it. */
export function workflowGraphOf(workflow: WorkflowDefinition): StatechartGraph {
  return statechartGraphOf(compiledWorkflow(workflow), phaseTriggerOf);
}

/**
 * What fires a transition of a workflow machine, as its definition says it: `next_phase` (the
 * model's choice; `next_phase (approval)` when a person approves it first), `tool.<name>` (that
 * call succeeded), or the ledger guard of an `always` transition (`3 failed db_query`). Every
 * choice is the same event to the machine, told apart only by its guard: read from the guards
 * `workflowMachineOf` gives its transitions.
 */
export function phaseTriggerOf(transition: AnyTransitionDefinition): string {
  const guard = transition.guard as { type?: unknown; params?: Record<string, unknown> } | undefined;
  const params = guard?.params ?? {};
  switch (guard?.type) {
    case 'chosen': return params.requiresApproval === true ? 'next_phase (approval)' : 'next_phase';
    case 'succeeded': return `tool.${String(params.tool)}`;
    case 'ledger': return ledgerGuardText(params.guard as LedgerGuard);
    default: return transition.eventType === '' ? 'always' : transition.eventType;
  }
}
