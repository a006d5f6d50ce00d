import { ToolFailureCode } from '../tools/toolFailure.ts';
import type { ModelResponse, ModelToolCall } from './conversation.ts';
import type { SessionContext } from './sessionContext.ts';
import type { RejectedToolCall } from './toolCallOutcome.ts';

/**
 * Checks of the model's tool calls that need no tool catalog, made by the session itself before
 * triage. Each problem becomes a rejection the model reads (a precise repair), never a lost
 * outcome, a call dropped without an answer, or a failed session.
 */

/** The rule a screening rejection broke, in its `details.rule`: repair notices name it. */
export const ScreeningRule = {
  distinctIds: 'distinct_tool_call_ids',
  toolName: 'tool_name_required',
  maxToolCallsPerTurn: 'maxToolCallsPerTurn',
} as const;

const rejection = (call: ModelToolCall, message: string, details: Record<string, unknown>): RejectedToolCall => ({
  toolCallId: call.id, name: call.name, rawArguments: call.arguments,
  failure: { code: ToolFailureCode.INVALID_INPUT, retryable: false, message, details },
});

/**
 * The response as the session records it, with every tool call under an id of its own, and the
 * rejections that answer the calls it cannot run.
 *
 * - A repeated id: the first call with it keeps it; each later one gets a new id (`<id>_<n>`, n
 *   its place in the reply) in the recorded assistant message and is answered, under that id, as
 *   not run. The API wants exactly one tool message per id: answering two calls under one id would
 *   send two results with one id and lose one of them. Not running the repeat is the safe reading:
 *   an exact repeat is usually the same call sent twice, and a side effect must not happen twice.
 * - A call without a tool name (what a stream whose deltas could not be told apart leaves) is
 *   answered as such, not as an unknown tool named "".
 */
export function screenModelResponse(response: ModelResponse): { response: ModelResponse; rejected: RejectedToolCall[] } {
  if (response.toolCalls.length === 0) return { response, rejected: [] };
  const taken = new Set(response.toolCalls.map((c) => c.id));
  const firstById = new Map<string, ModelToolCall>();
  const rejected: RejectedToolCall[] = [];
  const toolCalls = response.toolCalls.map((call, index): ModelToolCall => {
    const first = firstById.get(call.id);
    if (!first) {
      firstById.set(call.id, call);
      if (call.name.trim() === '') {
        rejected.push(rejection(call,
          `A tool call of your reply (id "${call.id}", arguments ${call.arguments || '(none)'}) arrived without a tool name, so it did not run. Ask for it again, naming the tool.`,
          { rule: ScreeningRule.toolName }));
      }
      return call;
    }
    let id = `${call.id}_${index + 1}`;
    for (let n = 2; taken.has(id); n++) id = `${call.id}_${index + 1}_${n}`;
    taken.add(id);
    const renamed = { ...call, id };
    const exactRepeat = first.name === call.name && first.arguments === call.arguments;
    rejected.push(rejection(renamed,
      exactRepeat
        ? `This call repeats an earlier call of your reply exactly (id "${call.id}", ${call.name}, the same arguments): it ran once, and was not run again.`
        : `Your reply used the tool call id "${call.id}" for more than one call. The first call with that id (${first.name || 'no tool name'}) is answered under it; this one (${call.name || 'no tool name'}) did not run, and is answered under the id "${id}". Give every tool call its own id, and ask for this call again if you still need it.`,
      { rule: ScreeningRule.distinctIds, duplicateOf: call.id }));
    return renamed;
  });
  return { response: { ...response, toolCalls }, rejected };
}

/** Whether the latest reply asks for more tool calls than one turn may make. */
export const asksForTooManyToolCalls = (context: Pick<SessionContext, 'lastResponse' | 'budgets'>): boolean =>
  (context.lastResponse?.toolCalls.length ?? 0) > context.budgets.maxToolCallsPerTurn;

/**
 * Too many tool calls in one reply: none runs, and each is answered with the limit, so the model
 * asks again with fewer. The turn counts as a repair (see `answerEveryToolCall`).
 */
export function rejectTooManyToolCalls(context: SessionContext): Pick<SessionContext, 'rejected'> {
  const calls = context.lastResponse?.toolCalls ?? [];
  const allowed = context.budgets.maxToolCallsPerTurn;
  const message = `You asked for ${calls.length} tool calls in one reply; at most ${allowed} are allowed per turn, so none of them ran. Ask again with at most ${allowed}, the most important first; the rest can follow in later turns.`;
  return {
    rejected: calls.map((call) => rejection(call, message, { rule: ScreeningRule.maxToolCallsPerTurn, asked: calls.length, allowed })),
  };
}

/** The calls of the latest reply that the screening did not already answer (nor the session itself: `next_phase`): what triage checks. */
export const callsToTriage = (context: Pick<SessionContext, 'lastResponse' | 'rejected' | 'phaseChoice'>): ModelToolCall[] =>
  (context.lastResponse?.toolCalls ?? []).filter((call) => !context.rejected.some((r) => r.toolCallId === call.id) && call.id !== context.phaseChoice?.toolCallId);
