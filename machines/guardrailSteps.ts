import { ToolFailureCode } from '../tools/toolFailure.ts';
import type { GuardrailDecision, GuardrailPoint } from '../guardrails/defineGuardrail.ts';
import type { ChatMessage } from './conversation.ts';
import type { SessionContext } from './sessionContext.ts';
import type { CheckGuardrailsInput, GuardrailCheck } from './sessionProtocol.ts';
import { addUsage } from './usage.ts';

/**
 * What the session does around its agent's guardrails, as pure context updates: which content a
 * point checks, and what the checks' verdicts do to it. A block at `input` or `output` ends the
 * session `blocked`; at `toolInput` the call is refused and at `toolOutput` its result withheld,
 * each with a message the model can act on. The checks themselves are the host's (`checkGuardrails`).
 */

type Update = Partial<SessionContext>;
type Items = CheckGuardrailsInput['items'];

/** The rule a guardrail's refusal of a call broke, in its `details.rule`. */
export const guardrailRule = 'guardrail';

const checksAt = (context: Pick<SessionContext, 'guardrailPoints'>, point: GuardrailPoint) => context.guardrailPoints.includes(point);

/** The first item a guardrail blocked, with its decision. */
export const blockOf = (check: GuardrailCheck): GuardrailDecision | undefined => check.items.find((item) => item.blocked)?.blocked;

const spent = (context: SessionContext, check: GuardrailCheck): Update => ({ usage: addUsage(context.usage, check.usage) });

// ── input: people's messages, before the model reads them ──

export const inputAwaitsCheck = (context: SessionContext): boolean => context.uncheckedInput.length > 0;

export function inputItems(context: SessionContext): Items {
  return context.uncheckedInput.flatMap((index) => {
    const message = context.conversation[index];
    return message?.role === 'user' ? [{ id: String(index), content: message.content }] : [];
  });
}

/** The messages as the checks let them through (masked, say). */
export function applyInputCheck(context: SessionContext, check: GuardrailCheck): Update {
  const conversation: ChatMessage[] = [...context.conversation];
  for (const item of check.items) {
    const index = Number(item.id);
    const message = conversation[index];
    if (item.rewritten && message?.role === 'user') conversation[index] = { ...message, content: item.content };
  }
  // The task is kept apart too (checkpoints list it): it reads as the model read it.
  const task = conversation[1]?.role === 'user' && check.items.some((item) => item.id === '1' && item.rewritten) ? { task: conversation[1].content } : {};
  return { conversation, uncheckedInput: [], ...task, ...spent(context, check) };
}

// ── toolInput: each accepted call's arguments, before approval and dispatch ──

export const toolInputAwaitsCheck = (context: SessionContext): boolean => checksAt(context, 'toolInput') && context.accepted.length > 0;

export function toolInputItems(context: SessionContext): Items {
  return context.accepted.map((call) => ({ id: call.callId, content: JSON.stringify(call.arguments), tool: call.name }));
}

/** A blocked call becomes a refusal the model reads; a rewritten one goes on with the new arguments (which must still be an object). */
export function applyToolInputCheck(context: SessionContext, check: GuardrailCheck): Update {
  const byCall = new Map(check.items.map((item) => [item.id, item]));
  const accepted: SessionContext['accepted'] = [];
  const rejected = [...context.rejected];
  for (const call of context.accepted) {
    const item = byCall.get(call.callId);
    const rewritten = item?.rewritten && !item.blocked ? objectOf(item.content) : undefined;
    const blocked = item?.blocked ?? (item?.rewritten && rewritten === undefined
      ? { guardrail: 'guardrails', point: 'toolInput' as const, outcome: 'block' as const, detail: 'a rewrite left arguments that are not a JSON object', durationMs: 0 }
      : undefined);
    if (blocked) {
      rejected.push({
        toolCallId: call.toolCallId, name: call.name, rawArguments: JSON.stringify(call.arguments),
        failure: {
          code: ToolFailureCode.FORBIDDEN, retryable: false,
          message: `The guardrail "${blocked.guardrail}" refused this call to ${call.name}: ${blocked.detail ?? 'no reason given'}. It did not run.`,
          details: { rule: guardrailRule, guardrail: blocked.guardrail },
        },
      });
      continue;
    }
    accepted.push(rewritten ? { ...call, arguments: rewritten } : call);
  }
  return { accepted, rejected, ...spent(context, check) };
}

function objectOf(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ── toolOutput: each result, before the model reads it ──

export const toolOutputAwaitsCheck = (context: SessionContext): boolean =>
  checksAt(context, 'toolOutput') && context.accepted.some((call) => context.outcomes[call.callId]?.status === 'ok');

export function toolOutputItems(context: SessionContext): Items {
  return context.accepted.flatMap((call) => {
    const outcome = context.outcomes[call.callId];
    if (outcome?.status !== 'ok') return [];
    return [{ id: call.callId, content: typeof outcome.result === 'string' ? outcome.result : JSON.stringify(outcome.result) ?? 'null', tool: call.name }];
  });
}

/** A withheld result becomes an error the model reads; a rewritten one is what the model gets (as JSON again when it is JSON). */
export function applyToolOutputCheck(context: SessionContext, check: GuardrailCheck): Update {
  const outcomes = { ...context.outcomes };
  for (const item of check.items) {
    const outcome = outcomes[item.id];
    if (outcome?.status !== 'ok') continue;
    const tool = context.accepted.find((call) => call.callId === item.id)?.name ?? 'the tool';
    if (item.blocked) {
      outcomes[item.id] = {
        status: 'error', callId: outcome.callId, durationMs: outcome.durationMs,
        failure: {
          code: ToolFailureCode.FORBIDDEN, retryable: false,
          message: `The result of ${tool} was withheld by the guardrail "${item.blocked.guardrail}": ${item.blocked.detail ?? 'no reason given'}. The call itself ran.`,
          details: { rule: guardrailRule, guardrail: item.blocked.guardrail },
        },
      };
    } else if (item.rewritten) {
      outcomes[item.id] = { ...outcome, result: parsedOrText(item.content) };
    }
  }
  return { outcomes, ...spent(context, check) };
}

function parsedOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

// ── output: the final answer, before it is returned ──

export const outputAwaitsCheck = (context: SessionContext): boolean => checksAt(context, 'output');

export function outputItems(context: SessionContext): Items {
  return [{ id: 'answer', content: context.lastResponse?.content ?? '' }];
}

/** The answer as the checks let it out, in the transcript too: what was redacted is nowhere the session keeps. */
export function applyOutputCheck(context: SessionContext, check: GuardrailCheck): Update {
  const item = check.items[0];
  if (!item?.rewritten || !context.lastResponse) return spent(context, check);
  const conversation = [...context.conversation];
  const last = conversation.at(-1);
  if (last?.role === 'assistant') conversation[conversation.length - 1] = { ...last, content: item.content };
  return { lastResponse: { ...context.lastResponse, content: item.content }, conversation, ...spent(context, check) };
}

/** A tripwire at `input` or `output`: the session ends `blocked`, naming the guardrail and why. */
export function recordBlock(context: SessionContext, check: GuardrailCheck): Update {
  const decision = blockOf(check);
  if (!decision) return {};
  const point = decision.point === 'output' ? 'output' : 'input';
  const reason = decision.detail ?? 'no reason given';
  // A blocked answer is kept nowhere: not in the transcript, not as the session's latest text.
  const withheld = `[withheld by the guardrail "${decision.guardrail}"]`;
  const conversation = [...context.conversation];
  const last = conversation.at(-1);
  if (point === 'output' && last?.role === 'assistant') conversation[conversation.length - 1] = { ...last, content: withheld };
  return {
    ...spent(context, check),
    ...(point === 'output' && context.lastResponse ? { conversation, lastResponse: { ...context.lastResponse, content: withheld } } : {}),
    outcome: { status: 'blocked', stopReason: `blocked by the guardrail "${decision.guardrail}" at ${point}: ${reason}`, guardrail: decision.guardrail, point, reason, output: null },
  };
}
