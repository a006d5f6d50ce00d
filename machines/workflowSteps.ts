import * as z from 'zod';
import type { StateValue } from 'xstate';
import type { LedgerEntry } from './ledger.ts';
import type { WorkflowDefinition } from './workflowDefinition.ts';
import { activePhasesOf, advanceWorkflow, guardThatHolds, ledgerGuardText, initialPhaseValue, phaseOfferOf, type PhaseFacts, type WorkflowEvent, type WorkflowMachine } from './workflowMachine.ts';

/** One move between phases, as the session records it (its events, its span, its checkpoint). */
export const PhaseMove = z.object({
  turn: z.number().int().nonnegative(),
  from: z.array(z.string()),
  to: z.array(z.string()),
  /** What moved it: a tool call that succeeded, the model's choice, a ledger guard, or a person's approval of the model's choice. */
  trigger: z.enum(['tool', 'choice', 'guard', 'approval']),
  /** The tool, the model's reason, or the guard that held. */
  detail: z.string().optional(),
  by: z.string().optional(),
});
export type PhaseMove = z.infer<typeof PhaseMove>;

/** Where a session is in its agent's workflow: part of its context, so of its checkpoint, so a resumed session goes on in the phase it was in. */
export const SessionPhase = z.object({
  value: z.union([z.string(), z.record(z.string(), z.unknown())]),
  /** When the phase was entered: its ledger guards and budgets count from here. */
  enteredAt: z.object({ turn: z.number().int().nonnegative(), ledgerIndex: z.number().int().nonnegative(), costUsd: z.number().nonnegative() }),
  path: z.array(PhaseMove),
  /** An exit the model chose that waits for a person's approval. */
  pendingExit: z.object({ to: z.string(), reason: z.string(), turn: z.number().int().nonnegative() }).nullable(),
});
export type SessionPhase = z.infer<typeof SessionPhase>;

/** The exit the model chose this turn with `next_phase`: answered by the session, applied when the turn ends. */
export const PhaseChoice = z.object({ toolCallId: z.string(), to: z.string(), reason: z.string(), requiresApproval: z.boolean() });
export type PhaseChoice = z.infer<typeof PhaseChoice>;

/** Where a session starts: the workflow's initial phases, entered before its first turn. */
export function startingPhase(machine: WorkflowMachine): SessionPhase {
  return { value: initialPhaseValue(machine) as SessionPhase['value'], enteredAt: { turn: 0, ledgerIndex: 0, costUsd: 0 }, path: [], pendingExit: null };
}

/** What the ledger shows since the phase was entered. */
export function phaseFactsOf(phase: SessionPhase, ledger: readonly LedgerEntry[], turn: number): PhaseFacts {
  const failedCalls: Record<string, number> = {};
  const succeededCalls: Record<string, number> = {};
  for (const entry of ledger.slice(phase.enteredAt.ledgerIndex)) {
    const counts = entry.status === 'ok' ? succeededCalls : failedCalls;
    counts[entry.tool] = (counts[entry.tool] ?? 0) + 1;
  }
  return { turnsInPhase: Math.max(0, turn - phase.enteredAt.turn), failedCalls, succeededCalls };
}

/** What the session knows at the end of a turn, for the workflow to move on. */
export interface TurnEnd {
  turn: number;
  ledger: readonly LedgerEntry[];
  costUsd: number;
  /** The exit the model chose this turn (`next_phase`), if it did. */
  chosenExit?: { to: string; reason: string } | undefined;
}

export type PhaseStep =
  | { kind: 'stayed'; phase: SessionPhase }
  /** `event` is what moved it, for the workflow's own actor to take the same transition. */
  | { kind: 'moved'; phase: SessionPhase; move: PhaseMove; event: WorkflowEvent }
  /** The model chose an exit a person must approve first: the session parks. */
  | { kind: 'awaiting_approval'; phase: SessionPhase };

/**
 * The workflow after a turn. At most one move a turn, the first that fires: a tool call of this
 * turn that succeeded (in the ledger's order), then the model's choice, then the phase's ledger
 * guards. A choice that needs a person's approval parks the session instead.
 */
export function phaseAfterTurn(machine: WorkflowMachine, workflow: WorkflowDefinition, phase: SessionPhase, end: TurnEnd): PhaseStep {
  const moved = (event: WorkflowEvent, trigger: PhaseMove['trigger'], detail?: string): PhaseStep | undefined => {
    const next = advanceWorkflow(machine, phase.value as StateValue, event);
    return next.changed ? enter(phase, next.value, end, event, { trigger, ...(detail ? { detail } : {}) }) : undefined;
  };
  for (const entry of end.ledger.slice(phase.enteredAt.ledgerIndex)) {
    if (entry.turn !== end.turn || entry.status !== 'ok') continue;
    const step = moved({ type: 'workflow.tool_succeeded', tool: entry.tool }, 'tool', entry.tool);
    if (step) return step;
  }
  if (end.chosenExit) {
    const exit = phaseOfferOf(workflow, phase.value as StateValue).exits.find((e) => e.to === end.chosenExit?.to);
    if (exit?.requiresApproval) return { kind: 'awaiting_approval', phase: { ...phase, pendingExit: { ...end.chosenExit, turn: end.turn } } };
    const step = moved({ type: 'workflow.next_phase', to: end.chosenExit.to }, 'choice', end.chosenExit.reason || undefined);
    if (step) return step;
  }
  const facts = phaseFactsOf(phase, end.ledger, end.turn);
  const guard = guardThatHolds(workflow, phase.value as StateValue, facts);
  const step = moved({ type: 'workflow.check', facts }, 'guard', guard ? ledgerGuardText(guard) : undefined);
  return step ?? { kind: 'stayed', phase };
}

/** A person's decision on the exit that waits: approved, the session moves; denied, it stays, and the model is told. */
export function decidePendingExit(machine: WorkflowMachine, phase: SessionPhase, decision: { approved: boolean; by: string }, end: Omit<TurnEnd, 'chosenExit'>): PhaseStep {
  const pending = phase.pendingExit;
  if (!pending) return { kind: 'stayed', phase };
  const cleared = { ...phase, pendingExit: null };
  if (!decision.approved) return { kind: 'stayed', phase: cleared };
  const event: WorkflowEvent = { type: 'workflow.next_phase', to: pending.to, approved: true };
  const next = advanceWorkflow(machine, phase.value as StateValue, event);
  if (!next.changed) return { kind: 'stayed', phase: cleared };
  return enter(cleared, next.value, end, event, { trigger: 'approval', ...(pending.reason ? { detail: pending.reason } : {}), by: decision.by });
}

function enter(phase: SessionPhase, value: StateValue, end: Omit<TurnEnd, 'chosenExit'>, event: WorkflowEvent, how: Pick<PhaseMove, 'trigger' | 'detail' | 'by'>): PhaseStep {
  const move: PhaseMove = { turn: end.turn, from: activePhasesOf(phase.value as StateValue), to: activePhasesOf(value), ...how };
  return {
    kind: 'moved',
    move,
    event,
    phase: { value: value as SessionPhase['value'], enteredAt: { turn: end.turn, ledgerIndex: end.ledger.length, costUsd: end.costUsd }, path: [...phase.path, move], pendingExit: null },
  };
}
