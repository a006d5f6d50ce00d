import type { Intervention, LedgerEntry } from './ledger.ts';
import { describeRollback, type RollbackReport } from './rollback.ts';
import type { SessionContext } from './sessionContext.ts';
import type { PlannedToolCall, ToolCallOutcome, ToolCallTriage } from './toolCallOutcome.ts';

/** What a person does to a session, as pure context updates; each records itself as an intervention. */

/**
 * The `count` messages about to be appended to the conversation come from people: the input
 * guardrails, when the agent has any, check them before the model reads them.
 */
export function peopleSaid(context: Pick<SessionContext, 'conversation' | 'guardrailPoints' | 'uncheckedInput'>, count: number): Pick<SessionContext, 'uncheckedInput'> | Record<string, never> {
  if (!context.guardrailPoints.includes('input') || count === 0) return {};
  const first = context.conversation.length;
  return { uncheckedInput: [...context.uncheckedInput, ...Array.from({ length: count }, (_, i) => first + i)] };
}

type Update = Partial<SessionContext>;

export function withIntervention(context: SessionContext, intervention: Omit<Intervention, 'turn'>): Pick<SessionContext, 'interventions'> {
  return { interventions: [...context.interventions, { turn: context.turn, ...intervention }] };
}

const waitingForApproval = (call: PlannedToolCall, callIds?: string[]) =>
  call.requiresApproval && !call.approval && (!callIds || callIds.includes(call.callId));

export function approveCalls(context: SessionContext, decision: { by: string; at: string; callIds?: string[] }): Update {
  return {
    accepted: context.accepted.map((call) => (waitingForApproval(call, decision.callIds) ? { ...call, approval: { by: decision.by, at: decision.at } } : call)),
    ...withIntervention(context, { kind: 'approved', by: decision.by, ...(decision.callIds ? { detail: decision.callIds.join(', ') } : {}) }),
  };
}

/** Denied calls become refusals the model reads, with the reason; they never run. */
export function denyCalls(context: SessionContext, decision: { reason: string; by?: string; callIds?: string[] }, kind: 'denied' | 'approval_expired' = 'denied'): Update {
  const denied = context.accepted.filter((c) => waitingForApproval(c, decision.callIds));
  return {
    accepted: context.accepted.filter((c) => !denied.includes(c)),
    rejected: [
      ...context.rejected,
      ...denied.map((c) => ({
        toolCallId: c.toolCallId, name: c.name, rawArguments: JSON.stringify(c.arguments),
        failure: { code: 'FORBIDDEN' as const, retryable: false, message: `A person did not approve this call to ${c.name}: ${decision.reason}` },
      })),
    ],
    ...withIntervention(context, { kind, ...(decision.by ? { by: decision.by } : {}), detail: decision.reason }),
  };
}

/** An instruction reaches the model before its next call (it may arrive mid-turn). */
export function keepInstruction(context: SessionContext, instruction: string, by?: string): Update {
  return { pendingInstructions: [...context.pendingInstructions, instruction], ...withIntervention(context, { kind: 'redirected', detail: instruction, ...(by ? { by } : {}) }) };
}

export function deliverInstructions(context: SessionContext): Update {
  if (context.pendingInstructions.length === 0) return {};
  return {
    conversation: [...context.conversation, ...context.pendingInstructions.map((content) => ({ role: 'user' as const, content }))],
    pendingInstructions: [],
    ...peopleSaid(context, context.pendingInstructions.length),
  };
}

export function takeOver(context: SessionContext, by: string): Update {
  return { takenOverBy: by, manualCalls: [], ...withIntervention(context, { kind: 'took_over', by }) };
}

export function acceptManualTriage(triage: ToolCallTriage): Update {
  // The person acting is the approval: they chose to make this call.
  return {
    accepted: triage.accepted.map((call) => (call.requiresApproval ? { ...call, approval: { by: 'manual', at: '' } } : call)),
    rejected: triage.rejected,
    outcomes: {},
  };
}

/** A manual call's answer, recorded in the ledger like the model's calls and kept for the hand-back. */
export function recordManualCall(
  context: SessionContext,
  params: { request: { toolCallId: string; tool: string; arguments: string }; outcome?: ToolCallOutcome },
): Update {
  const call = context.accepted[0];
  const rejection = context.rejected[0];
  const by = context.takenOverBy ?? 'a person';
  const answer = params.outcome
    ? JSON.stringify(params.outcome.status === 'ok' ? { ok: true, result: params.outcome.result } : { ok: false, error: params.outcome.failure })
    : JSON.stringify({ ok: false, error: rejection?.failure });
  const entry: LedgerEntry =
    call && params.outcome
      ? {
          turn: context.turn, callId: call.callId, toolCallId: call.toolCallId, tool: call.name, arguments: call.arguments,
          status: params.outcome.status, durationMs: params.outcome.durationMs, by,
          ...(params.outcome.status === 'error' ? { errorCode: params.outcome.failure.code } : {}),
          ...(call.sideEffects ? { sideEffects: true } : {}),
          ...(params.outcome.status === 'ok' && params.outcome.compensation !== undefined ? { compensation: params.outcome.compensation } : {}),
        }
      : {
          turn: context.turn, callId: null, toolCallId: params.request.toolCallId, tool: params.request.tool, arguments: params.request.arguments,
          status: 'rejected', by, ...(rejection ? { errorCode: rejection.failure.code } : {}),
        };
  return {
    ledger: [...context.ledger, entry],
    toolCalls: context.toolCalls + (call && params.outcome ? 1 : 0),
    manualCalls: [...context.manualCalls, { tool: params.request.tool, arguments: params.request.arguments, answer }],
    accepted: [],
    rejected: [],
    outcomes: {},
  };
}

/** The model gets the session back and reads what the person did, then their instruction. */
export function handBack(context: SessionContext, instruction: string | undefined): Update {
  const by = context.takenOverBy ?? 'a person';
  const done = context.manualCalls.map((c) => `- ${c.tool} ${c.arguments} → ${c.answer}`).join('\n');
  const content = [
    `${by} took over the session${context.manualCalls.length > 0 ? ` and made these calls:\n${done}` : ' and made no calls.'}`,
    instruction ? `Their instruction: ${instruction}` : 'Carry on from here.',
  ].join('\n');
  return {
    takenOverBy: null,
    manualCalls: [],
    outcome: null,
    refocused: false,
    loopCheckFromTurn: context.turn + 1,
    consecutiveRepairs: 0,
    conversation: [...context.conversation, { role: 'user' as const, content }],
    ...(instruction ? peopleSaid(context, 1) : {}),
    ...withIntervention(context, { kind: 'handed_back', by, ...(instruction ? { detail: instruction } : {}) }),
  };
}

/** Marks what a rollback undid, keeps its report, and tells the model. */
export function recordRollback(context: SessionContext, report: RollbackReport): Update {
  const undone = new Set(report.steps.filter((s) => s.result === 'undone').map((s) => s.callId));
  return {
    ledger: context.ledger.map((entry) => (entry.callId && undone.has(entry.callId) ? { ...entry, undone: true } : entry)),
    rollbacks: [...context.rollbacks, report],
    conversation: [...context.conversation, { role: 'user' as const, content: describeRollback(report) }],
    ...withIntervention(context, { kind: 'rolled_back', by: report.by, detail: `to turn ${report.toTurn}` }),
  };
}
