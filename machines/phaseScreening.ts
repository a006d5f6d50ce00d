import { ToolFailureCode } from '../tools/toolFailure.ts';
import type { ModelToolCall } from './conversation.ts';
import type { RejectedToolCall } from './toolCallOutcome.ts';
import { nextPhaseTrigger } from './workflowDefinition.ts';
import type { PhaseOffer } from './workflowMachine.ts';
import { toolPatternWithin } from './workflowValidation.ts';

/**
 * A workflow's phases enforced on the model's reply, before triage: a call of a tool the current
 * phase does not offer (a model that remembers an earlier phase's tool) is refused with a repair
 * naming the phase and its legal tools, and never reaches a worker; `next_phase` is the model's
 * choice of an exit, answered by the session itself.
 */

/** The rule a phase refusal broke, in its `details.rule`. */
export const phaseRule = 'workflow_phase';

/** The tool the model chooses an exit with, offered only in phases with exits it may choose. */
export const nextPhaseToolName = nextPhaseTrigger;

/** `next_phase` as the model is offered it: the legal exits as an enum, and why it wants to move. */
export function nextPhaseTool(offer: PhaseOffer): { name: string; description: string; parameters: Record<string, unknown> } | undefined {
  if (offer.exits.length === 0) return undefined;
  const exits = offer.exits.map((exit) => `${exit.to}${exit.description ? ` (${exit.description})` : ''}${exit.requiresApproval ? ' — a person approves this move first' : ''}`);
  return {
    name: nextPhaseToolName,
    description: `Move the work to its next phase when this one (${offer.phases.join(' › ')}) is done. The phases you may move to: ${exits.join('; ')}.`,
    parameters: {
      type: 'object',
      properties: {
        to: { type: 'string', enum: offer.exits.map((exit) => exit.to), description: 'The phase to move to.' },
        reason: { type: 'string', description: 'Why this phase is done, in a sentence.' },
      },
      required: ['to', 'reason'],
      additionalProperties: false,
    },
  };
}

/** What the screening decided: the calls that go on to triage, the refusals, and the exit the model chose. */
export interface PhaseScreening {
  calls: ModelToolCall[];
  rejected: RejectedToolCall[];
  /** A valid `next_phase` call: answered by the session, applied after the turn. */
  chosenExit: { toolCallId: string; to: string; reason: string } | undefined;
}

const refusal = (call: ModelToolCall, code: ToolFailureCode, message: string, details: Record<string, unknown>): RejectedToolCall => ({
  toolCallId: call.id, name: call.name, rawArguments: call.arguments,
  failure: { code, retryable: false, message, details },
});

/**
 * Screens the reply's tool calls against the phase: calls of tools it offers go on; others are
 * refused (`FORBIDDEN`, with the phase and its tools, so the model can repair); a `next_phase`
 * naming a legal exit becomes the chosen exit. A `next_phase` that names no legal exit, a second
 * one, or one beside other calls is refused (`INVALID_INPUT`): moving on and working in the same
 * turn would run those calls in the wrong phase.
 */
export function screenForPhase(offer: PhaseOffer, calls: readonly ModelToolCall[]): PhaseScreening {
  const where = offer.phases.join(' › ') || '(none)';
  const legal = offer.tools === undefined ? 'every tool of the agent' : offer.tools.length === 0 ? 'no tools' : offer.tools.join(', ');
  const exits = offer.exits.map((exit) => exit.to);
  const moveOn = exits.length > 0 ? ` To move on, call ${nextPhaseToolName} with one of: ${exits.join(', ')}.` : offer.answerAllowed ? ' This phase ends with your final answer.' : '';
  const rejected: RejectedToolCall[] = [];
  const kept: ModelToolCall[] = [];
  let chosenExit: PhaseScreening['chosenExit'];
  const nextPhaseCalls = calls.filter((call) => call.name === nextPhaseToolName);
  for (const call of calls) {
    if (call.name !== nextPhaseToolName) {
      if (offer.tools === undefined || toolPatternWithin(call.name, offer.tools)) kept.push(call);
      else rejected.push(refusal(call, ToolFailureCode.FORBIDDEN,
        `${call.name} cannot be used in the phase "${where}": it did not run. The tools of this phase: ${legal}.${moveOn}`,
        { rule: phaseRule, phase: offer.phases, allowed: offer.tools ?? null, exits }));
      continue;
    }
    let to: unknown;
    let reason: unknown;
    try {
      ({ to, reason } = JSON.parse(call.arguments) as { to?: unknown; reason?: unknown });
    } catch {
      to = undefined;
    }
    const problem = exits.length === 0 ? `the phase "${where}" has no exit you choose${offer.answerAllowed ? ': it ends with your final answer' : ''}`
      : typeof to !== 'string' || !exits.includes(to) ? `"to" must be one of: ${exits.join(', ')} (it was ${JSON.stringify(to ?? null)})`
      : nextPhaseCalls.length > 1 ? 'call it once, alone in your reply'
      : calls.length > 1 ? 'call it alone in your reply, once the work of this phase is done: the other calls of your reply did not run either'
      : undefined;
    if (problem) {
      rejected.push(refusal(call, ToolFailureCode.INVALID_INPUT, `${nextPhaseToolName} did not move the work: ${problem}.`, { rule: phaseRule, phase: offer.phases, exits }));
      continue;
    }
    chosenExit = { toolCallId: call.id, to: to as string, reason: typeof reason === 'string' ? reason : '' };
  }
  // A reply that moved on and also called tools runs none of them: they belong to one phase or the other.
  if (nextPhaseCalls.length > 0 && calls.length > 1) {
    for (const call of kept) {
      rejected.push(refusal(call, ToolFailureCode.INVALID_INPUT,
        `${call.name} did not run: your reply also called ${nextPhaseToolName}. Finish this phase's work first, then call ${nextPhaseToolName} alone.`,
        { rule: phaseRule, phase: offer.phases }));
    }
    return { calls: [], rejected, chosenExit: undefined };
  }
  return { calls: kept, rejected, chosenExit };
}

/** The repair for a final answer given in a phase that does not end with one. */
export function answerRefusedInPhase(offer: PhaseOffer): string {
  const exits = offer.exits.map((exit) => exit.to);
  return `Your answer was not accepted: the work is in the phase "${offer.phases.join(' › ')}", which does not end with an answer.`
    + (exits.length > 0 ? ` Finish its work, then call ${nextPhaseToolName} with one of: ${exits.join(', ')}.` : ' Finish its work: the next phase follows from it.');
}
