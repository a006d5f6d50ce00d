import type { StateValue } from 'xstate';
import type { BudgetName } from './budgets.ts';
import type { ChatMessage, ModelResponse } from './conversation.ts';
import { withIntervention } from './humanControlSteps.ts';
import { answerRefusedInPhase, nextPhaseTool, nextPhaseToolName, screenForPhase } from './phaseScreening.ts';
import type { PhaseToolOffer } from './sessionProtocol.ts';
import type { SessionContext } from './sessionContext.ts';
import type { RejectedToolCall } from './toolCallOutcome.ts';
import { compiledWorkflow, phaseOfferOf, type PhaseOffer, type WorkflowEvent } from './workflowMachine.ts';
import { decidePendingExit, phaseAfterTurn, type PhaseChoice } from './workflowSteps.ts';

/**
 * What a session does for its agent's workflow, as pure context updates: what the current phase
 * offers the model, the reply screened against it, the move after a turn, and a person's decision
 * on an exit that needs one. A session without a workflow is left exactly as it was.
 */

type Update = Partial<SessionContext>;
type WithPhase = Pick<SessionContext, 'workflow' | 'phase'>;

/** What the session's current phase offers and allows; undefined without a workflow. */
export function currentOffer(context: WithPhase): PhaseOffer | undefined {
  return context.workflow && context.phase ? phaseOfferOf(context.workflow, context.phase.value as StateValue) : undefined;
}

/** The tools the model is offered this turn, as the model actor filters them; null without a workflow. */
export function phaseToolOffer(context: WithPhase): PhaseToolOffer | null {
  const offer = currentOffer(context);
  if (!offer) return null;
  return { phases: offer.phases, tools: offer.tools ?? null, nextPhase: nextPhaseTool(offer) ?? null };
}

/**
 * The transcript as the model reads it this turn: the system prompt followed by the current
 * phase, its instructions and how it ends. Added to the request, never stored: the transcript
 * keeps the agent's own prompt, and the phase section always says where the session is now.
 */
export function messagesInPhase(context: Pick<SessionContext, 'workflow' | 'phase' | 'conversation'>): ChatMessage[] {
  const offer = currentOffer(context);
  const [first, ...rest] = context.conversation;
  if (!offer || first?.role !== 'system') return context.conversation;
  const exits = offer.exits.map((exit) => `${exit.to}${exit.requiresApproval ? ' (a person approves this move first)' : ''}`);
  const ending = exits.length > 0 ? `When the work of this phase is done, call ${nextPhaseToolName} with one of: ${exits.join(', ')}.`
    : offer.answerAllowed ? 'This phase ends with your final answer.'
    : 'This phase ends when its work succeeds.';
  const section = [
    `Current phase of your work: ${offer.phases.join(' › ')}.`,
    ...offer.instructions,
    ...(offer.answerAllowed && exits.length > 0 ? ['You may also end the work here with your final answer.'] : []),
    ending,
  ].join('\n');
  return [{ ...first, content: `${first.content}\n\n${section}` }, ...rest];
}

/** The model the current phase names, if it names one: it wins over the agent's model and its routing. */
export const phaseModel = (context: WithPhase): string | undefined => currentOffer(context)?.model;

/**
 * The reply's calls screened against the phase, after the checks every reply gets (`rejected`):
 * calls of tools the phase does not offer are refused with a repair, and a valid `next_phase` is
 * the turn's choice of an exit.
 */
export function screenReplyForPhase(context: WithPhase, response: ModelResponse, rejected: RejectedToolCall[]): { rejected: RejectedToolCall[]; phaseChoice: PhaseChoice | null } {
  const offer = currentOffer(context);
  if (!offer) return { rejected, phaseChoice: null };
  const open = response.toolCalls.filter((call) => !rejected.some((r) => r.toolCallId === call.id));
  const screening = screenForPhase(offer, open);
  const chosen = screening.chosenExit;
  return {
    rejected: [...rejected, ...screening.rejected],
    phaseChoice: chosen ? { ...chosen, requiresApproval: offer.exits.some((exit) => exit.to === chosen.to && exit.requiresApproval) } : null,
  };
}

/** What the model reads as the answer to its `next_phase` call. */
export function phaseChoiceAnswer(choice: PhaseChoice): Record<string, unknown> {
  return choice.requiresApproval
    ? { phase: choice.to, moved: false, waiting: `A person approves moving to "${choice.to}" first; you will be told what they decided.` }
    : { phase: choice.to, moved: true };
}

/** A final answer given in a phase that does not end with one. */
export function answerOutsideItsPhase(context: WithPhase): boolean {
  const offer = currentOffer(context);
  return offer !== undefined && !offer.answerAllowed;
}

/** The model is told to finish the phase first; the turn counts as a repair. */
export function refuseAnswerInPhase(context: SessionContext): Update {
  const offer = currentOffer(context);
  if (!offer) return {};
  const consecutiveRepairs = context.consecutiveRepairs + 1;
  return {
    consecutiveRepairs,
    conversation: [...context.conversation, { role: 'user', content: answerRefusedInPhase(offer) }],
    notices: [...context.notices, { kind: 'repair', turn: context.turn, consecutive: consecutiveRepairs,
      reason: `a final answer in the phase "${offer.phases.join(' › ')}", which does not end with one` }],
  };
}

/**
 * The workflow after the turn's tool answers: it moves (at most once), parks for a person's
 * approval, or stays. `moved` is the event that moved it, for the workflow's actor.
 */
export function advancePhase(context: SessionContext): { update: Update; moved?: WorkflowEvent } {
  if (!context.workflow || !context.phase) return { update: {} };
  const choice = context.phaseChoice;
  const step = phaseAfterTurn(compiledWorkflow(context.workflow), context.workflow, context.phase, {
    turn: context.turn, ledger: context.ledger, costUsd: context.usage.costUsd,
    chosenExit: choice ? { to: choice.to, reason: choice.reason } : undefined,
  });
  return { update: { phase: step.phase, phaseChoice: null }, ...(step.kind === 'moved' ? { moved: step.event } : {}) };
}

/** Whether an exit the model chose waits for a person. */
export const awaitsPhaseApproval = (context: Pick<SessionContext, 'phase'>): boolean => (context.phase?.pendingExit ?? null) !== null;

/**
 * A person's decision on the exit that waits (or the approval clock's): approved, the session
 * moves; denied or expired, it stays, and either way the model is told before its next call.
 */
export function decidePhaseExit(context: SessionContext, decision: { approved: boolean; by: string; reason?: string; expired?: boolean }): { update: Update; moved?: WorkflowEvent } {
  const pending = context.phase?.pendingExit;
  if (!context.workflow || !context.phase || !pending) return { update: {} };
  const step = decidePendingExit(compiledWorkflow(context.workflow), context.phase, decision, { turn: context.turn, ledger: context.ledger, costUsd: context.usage.costUsd });
  const staying = currentOffer(context)?.phases.join(' › ') ?? '';
  const why = decision.reason ? `: ${decision.reason}` : '';
  const content = decision.approved
    ? `${decision.by} approved moving to the phase "${pending.to}": the work is in it now.`
    : decision.expired
      ? `Nobody approved moving to the phase "${pending.to}" in time. The work stays in the phase "${staying}": revise it, or choose another way on.`
      : `${decision.by} did not approve moving to the phase "${pending.to}"${why}. The work stays in the phase "${staying}": revise it, or choose another way on.`;
  const update: Update = {
    phase: step.phase,
    approvalDeadline: null,
    conversation: [...context.conversation, { role: 'user', content }],
    ...withIntervention(context, {
      kind: decision.approved ? 'approved' : decision.expired ? 'approval_expired' : 'denied',
      by: decision.by,
      detail: `${nextPhaseToolName} → ${pending.to}${why}`,
    }),
  };
  return { update, ...(step.kind === 'moved' ? { moved: step.event } : {}) };
}

/** The budget of the current phase that a model call now would overrun, with the phase, if any. */
export function phaseBudgetSpent(context: SessionContext): { budget: Extract<BudgetName, 'maxSteps' | 'maxCostUsd'>; phases: string[] } | undefined {
  const offer = currentOffer(context);
  const budgets = offer?.budgets;
  if (!offer || !budgets || !context.phase) return undefined;
  const { enteredAt } = context.phase;
  if (budgets.maxSteps !== undefined && context.turn - enteredAt.turn >= budgets.maxSteps) return { budget: 'maxSteps', phases: offer.phases };
  if (budgets.maxCostUsd !== undefined && context.usage.costUsd - enteredAt.costUsd >= budgets.maxCostUsd) return { budget: 'maxCostUsd', phases: offer.phases };
  return undefined;
}
