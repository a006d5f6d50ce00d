import { digestOf, type LedgerEntry } from './ledger.ts';
import type { ChatMessage } from './conversation.ts';
import type { RecoveryNotice } from './recovery.ts';
import type { SessionContext } from './sessionContext.ts';
import type { RejectedToolCall, ToolCallOutcome } from './toolCallOutcome.ts';
import { phaseChoiceAnswer } from './phaseSteps.ts';
import { phaseRule } from './phaseScreening.ts';

/** The tool result message the model reads: structured, with explicit success or failure. */
export function toolMessageContent(outcome: ToolCallOutcome | { status: 'rejected'; failure: RejectedToolCall['failure'] }): string {
  return outcome.status === 'ok' ? JSON.stringify({ ok: true, result: outcome.result }) : JSON.stringify({ ok: false, error: outcome.failure });
}

/**
 * The end of a turn's tool calls: every call the model made gets exactly one answer, in the order
 * it asked (its result, its structured error, or why it was refused), each recorded in the ledger
 * with a digest of what it answered. A turn with any refused call counts as a repair.
 */
export function answerEveryToolCall(context: SessionContext): Partial<SessionContext> {
  const asked = context.lastResponse?.toolCalls ?? [];
  const messages: ChatMessage[] = [];
  const entries: LedgerEntry[] = [];
  const inDoubt: RecoveryNotice[] = [];
  for (const request of asked) {
    const call = context.accepted.find((c) => c.toolCallId === request.id);
    const outcome = call ? context.outcomes[call.callId] : undefined;
    const rejection = context.rejected.find((r) => r.toolCallId === request.id);
    const choice = context.phaseChoice?.toolCallId === request.id ? context.phaseChoice : undefined;
    if (choice) {
      // The model's choice of a phase exit: answered by the session itself, recorded like any call.
      const content = JSON.stringify({ ok: true, result: phaseChoiceAnswer(choice) });
      messages.push({ role: 'tool', toolCallId: request.id, content });
      entries.push({ turn: context.turn, callId: null, toolCallId: request.id, tool: request.name, arguments: request.arguments, status: 'ok', resultDigest: digestOf(content) });
    } else if (call && outcome) {
      const content = toolMessageContent(outcome);
      const entry: LedgerEntry = {
        turn: context.turn, callId: call.callId, toolCallId: request.id, tool: call.name,
        arguments: call.arguments, status: outcome.status, durationMs: outcome.durationMs, resultDigest: digestOf(content),
        ...(call.sideEffects ? { sideEffects: true } : {}),
        ...(outcome.status === 'ok' && outcome.compensation !== undefined ? { compensation: outcome.compensation } : {}),
      };
      if (outcome.status === 'error') entry.errorCode = outcome.failure.code;
      if (outcome.status === 'error' && outcome.failure.code === 'IN_DOUBT') {
        inDoubt.push({ kind: 'in_doubt', turn: context.turn, callId: call.callId, tool: call.name, arguments: call.arguments, evidence: outcome.failure.details ?? {} });
      }
      messages.push({ role: 'tool', toolCallId: request.id, content });
      entries.push(entry);
    } else {
      const failure = rejection?.failure ?? {
        code: 'INTERNAL' as const, message: `No outcome was recorded for tool call ${request.id}.`, retryable: false,
      };
      const content = toolMessageContent({ status: 'rejected', failure });
      messages.push({ role: 'tool', toolCallId: request.id, content });
      entries.push({
        turn: context.turn, callId: null, toolCallId: request.id, tool: request.name,
        arguments: request.arguments, status: 'rejected', errorCode: failure.code, resultDigest: digestOf(content),
      });
    }
  }
  // A turn with any refused call is a repair turn: the model is being corrected, not making progress.
  // Only the model's own mistakes count: a person denying a call is not a repair.
  const repaired = context.rejected.some((r) => r.failure.code === 'INVALID_INPUT' || r.failure.code === 'UNKNOWN_TOOL' || r.failure.details?.rule === phaseRule);
  const consecutiveRepairs = repaired ? context.consecutiveRepairs + 1 : 0;
  const notices: RecoveryNotice[] = repaired
    ? [...context.notices, { kind: 'repair', turn: context.turn, consecutive: consecutiveRepairs,
        reason: repairReason(context.rejected) }, ...inDoubt]
    : [...context.notices, ...inDoubt];
  return {
    conversation: [...context.conversation, ...messages],
    ledger: [...context.ledger, ...entries],
    consecutiveRepairs,
    notices,
    toolCalls: context.toolCalls + context.accepted.length,
    accepted: [],
    rejected: [],
    outcomes: {},
  };
}

/**
 * What a repair turn corrected, for its notice: the tools by failure (and by the screening rule
 * broken, when there is one), each named once: ten calls refused for one reason make one entry.
 */
function repairReason(rejected: RejectedToolCall[]): string {
  const byCause = new Map<string, Set<string>>();
  for (const r of rejected) {
    const rule = r.failure.details?.rule;
    const cause = `${r.failure.code}${typeof rule === 'string' ? ` (${rule})` : ''}`;
    byCause.set(cause, (byCause.get(cause) ?? new Set()).add(r.name || '(no tool name)'));
  }
  return [...byCause].map(([cause, names]) => `${[...names].join(', ')}: ${cause}`).join('; ');
}

/**
 * The session is leaving the turn before every call answered (a person took it over): the open
 * calls are answered as abandoned, so the conversation stays valid for the API when it resumes.
 */
export function abandonOpenToolCalls(context: SessionContext): Partial<SessionContext> {
  const outcomes = { ...context.outcomes };
  for (const call of context.accepted) {
    outcomes[call.callId] ??= {
      status: 'error',
      callId: call.callId,
      durationMs: 0,
      failure: { code: 'INTERNAL', retryable: false, message: `The call to ${call.name} was abandoned when the session was escalated; whether it ran is unknown.` },
    };
  }
  return answerEveryToolCall({ ...context, outcomes });
}
