import type { RecoveryNotice } from './recovery.ts';
import { peopleSaid } from './humanControlSteps.ts';
import { describeLoop, detectLoop } from './loopDetection.ts';
import { latestText, type SessionContext } from './sessionContext.ts';

/** What the session does to recover from a misbehaving model, as pure context updates. */

export const loopEvidence = (context: SessionContext) => detectLoop(context.ledger, context.recovery.loop, context.loopCheckFromTurn);
export const repairsExhausted = (context: SessionContext) => context.consecutiveRepairs >= context.recovery.maxConsecutiveRepairs;
/** Whether one more repair turn would still leave the session under `maxConsecutiveRepairs`. */
export const aRepairIsLeft = (context: SessionContext) => context.consecutiveRepairs + 1 < context.recovery.maxConsecutiveRepairs;

/** An empty reply, a refusal or a cut-off reply goes back to the model with an instruction. */
export function requestRepair(context: SessionContext): Partial<SessionContext> {
  const response = context.lastResponse;
  let reason = 'empty response';
  let instruction = 'Your last reply was empty: it had neither text nor tool calls. Call one of the tools, or answer the task in text.';
  if (response?.refusal) {
    reason = `refusal: ${response.refusal}`;
    instruction = `You declined with: "${response.refusal}". If the task can be done with the available tools, continue; if not, say precisely what is missing.`;
  } else if (response?.finishReason === 'length') {
    reason = 'reply cut off at the output limit';
    instruction = 'Your last reply was cut off at the output limit. Give your answer again, shorter.';
  } else if (response?.finishReason === 'content_filter') {
    reason = 'reply stopped by a content filter';
    instruction = 'Your last reply was stopped by a content filter. Answer again without the content that was filtered, or say what you cannot provide.';
  }
  const consecutiveRepairs = context.consecutiveRepairs + 1;
  return {
    consecutiveRepairs,
    conversation: [...context.conversation, { role: 'user' as const, content: instruction }],
    notices: [...context.notices, { kind: 'repair' as const, turn: context.turn, reason, consecutive: consecutiveRepairs }],
  };
}

/** The model kept producing malformed output: the next fallback model takes over. */
export function switchToNextModel(context: SessionContext): Partial<SessionContext> {
  const [next, ...rest] = context.fallbackModels;
  const to = next ?? context.model;
  return {
    model: to,
    fallbackModels: rest,
    consecutiveRepairs: 0,
    notices: [...context.notices, { kind: 'model_switched' as const, turn: context.turn, from: context.model, to,
      reason: `${context.consecutiveRepairs} consecutive turns of malformed output` }],
  };
}

/** A first loop: a message that names it and asks for a plan; loop detection restarts after it. */
export function refocusOnLoop(context: SessionContext): Partial<SessionContext> {
  const evidence = loopEvidence(context);
  if (!evidence) return {};
  const description = describeLoop(evidence);
  return {
    refocused: true,
    loopCheckFromTurn: context.turn + 1,
    conversation: [...context.conversation, {
      role: 'user' as const,
      content: `You are going in circles. ${description} Stop repeating it: state your plan in one or two sentences, then either take a different step or give your answer with what you have.`,
    }],
    notices: [...context.notices, { kind: 'loop_detected' as const, turn: context.turn, action: 'refocus' as const, evidence, description }],
  };
}

/** A loop after the refocus: the session is handed to a person, with the evidence. */
export function escalateOnLoop(context: SessionContext): Partial<SessionContext> {
  const evidence = loopEvidence(context);
  const description = evidence ? describeLoop(evidence) : 'The session kept repeating itself.';
  return {
    outcome: { status: 'escalated' as const, stopReason: `escalated: loop detected after a refocus. ${description}`, output: latestText(context) },
    notices: evidence
      ? [...context.notices, { kind: 'loop_detected' as const, turn: context.turn, action: 'escalate' as const, evidence, description }]
      : context.notices,
  };
}

/** The calls of this turn that ended in doubt (their worker died mid-call; nobody knows whether they took effect). */
export function callsInDoubt(context: SessionContext): Extract<RecoveryNotice, { kind: 'in_doubt' }>[] {
  return context.notices.filter((n): n is Extract<RecoveryNotice, { kind: 'in_doubt' }> => n.kind === 'in_doubt' && n.turn === context.turn);
}

/**
 * A side effect that may or may not have happened is a person's call: the session parks, saying
 * which calls and what is known, and their answer (it happened, it did not, do it again) resumes it.
 */
export function escalateInDoubt(context: SessionContext): Partial<SessionContext> {
  const calls = callsInDoubt(context).map((n) => `${n.tool} (call ${n.callId})`).join(', ');
  return {
    outcome: {
      status: 'escalated' as const,
      stopReason: `escalated: in doubt: ${calls} started on a worker that died before recording the outcome; check whether it took effect and answer the session`,
      output: latestText(context),
    },
  };
}

/** A person answered the escalated session: their words go to the model and the loop resumes afresh. */
export function resumeWithAnswer(context: SessionContext, answer: string): Partial<SessionContext> {
  return {
    conversation: [...context.conversation, { role: 'user' as const, content: answer }],
    ...peopleSaid(context, 1),
    outcome: null,
    refocused: false,
    loopCheckFromTurn: context.turn + 1,
    consecutiveRepairs: 0,
  };
}
