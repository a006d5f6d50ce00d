import { assign, enqueueActions, fromPromise, setup, stopChild } from 'xstate';
import { BudgetName, budgetExhaustedBeforeModelCall } from './budgets.ts';
import { addSpending, stepsSpent } from './delegation.ts';
import { calibrate } from './contextAssembly.ts';
import { routeCurrentTurn } from './turnFacts.ts';
import type { ModelResponse } from './conversation.ts';
import type { CallModelInput, CheckGuardrailsInput, ExecuteToolCallInput, GuardrailCheck, RollBackInput, SessionEvent, TriageToolCallsInput } from './sessionProtocol.ts';
import { applyInputCheck, applyOutputCheck, applyToolInputCheck, applyToolOutputCheck, inputAwaitsCheck, outputAwaitsCheck, recordBlock, toolInputAwaitsCheck, toolOutputAwaitsCheck } from './guardrailSteps.ts';
import type { Intervention } from './ledger.ts';
import { aRepairIsLeft, callsInDoubt, escalateInDoubt, escalateOnLoop, loopEvidence, refocusOnLoop, repairsExhausted, requestRepair, resumeWithAnswer, switchToNextModel } from './recoverySteps.ts';
import { latestText, type SessionContext, type SessionInput } from './sessionContext.ts';
import type { SessionResult } from './sessionOutcome.ts';
import {
  acceptManualTriage, approveCalls, deliverInstructions, denyCalls, handBack, keepInstruction, recordManualCall, recordRollback, takeOver, withIntervention,
} from './humanControlSteps.ts';
import type { RollbackReport } from './rollback.ts';
import { abandonOpenToolCalls, answerEveryToolCall } from './toolAnswers.ts';
import { workflowMachineOf } from './workflowMachine.ts';
import { advancePhase, answerOutsideItsPhase, awaitsPhaseApproval, decidePhaseExit, phaseBudgetSpent, refuseAnswerInPhase, screenReplyForPhase } from './phaseSteps.ts';
import { asksForTooManyToolCalls, callsToTriage, rejectTooManyToolCalls, screenModelResponse } from './toolCallScreening.ts';
import type { ToolCallOutcome, ToolCallTriage } from './toolCallOutcome.ts';
import { addUsage } from './usage.ts';

/** Tool-call children of a session are named `tool:<callId>`. */
export const toolCallActorPrefix = 'tool:';
const cutOffReasons: ReadonlySet<string> = new Set(['length', 'content_filter']);

// Placeholders that fail loudly: every host provides the real actors through `session.provide`.
function notProvided<Output, Input>(name: string) {
  return fromPromise<Output, Input>(async () => {
    throw new Error(`The session actor "${name}" was not provided: use sessionMachine.provide({ actors: { ${name} } }).`);
  });
}

/** The session's child that runs its workflow. */
export const workflowActorId = 'workflow';

// Stands in for a workflow the host did not provide: a single phase, drawn as such, that nothing moves.
const workflowNotProvided = workflowMachineOf({ initial: 'not_provided', states: { not_provided: { answer: true } } });

/** The budget a model call now would overrun, if any. */
export const budgetSpentOut = (context: SessionContext) =>
  budgetExhaustedBeforeModelCall(
    { steps: stepsSpent(context), totalTokens: context.usage.inputTokens + context.usage.outputTokens, costUsd: context.usage.costUsd },
    context.budgets,
  );

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The session with the model's reply recorded, screened: every tool call under an id of its own, the ones that cannot run already answered. */
function recordedResponse(context: SessionContext, received: ModelResponse): Partial<SessionContext> {
  const screened = screenModelResponse(received);
  const { response } = screened;
  const { rejected, phaseChoice } = screenReplyForPhase(context, response, screened.rejected);
  return {
    lastResponse: response,
    ...(response.context?.summary ? { summary: response.context.summary } : {}),
    ...(response.cached ? { cache: { ...context.cache, modelHits: context.cache.modelHits + 1, savedUsd: context.cache.savedUsd + (response.savedUsd ?? 0) } } : {}),
    ...(response.context && !response.cached
      ? { contextCalibration: calibrate(context.contextCalibration, response.context.countedInputTokens, response.context.reportedInputTokens ?? response.usage.inputTokens, response.context.exactCount) }
      : {}),
    usage: addUsage(context.usage, { ...response.usage, costUsd: response.costUsd }),
    conversation: [
      ...context.conversation,
      response.toolCalls.length > 0
        ? { role: 'assistant' as const, content: response.content, toolCalls: response.toolCalls }
        : { role: 'assistant' as const, content: response.content },
    ],
    accepted: [],
    rejected,
    outcomes: {},
    phaseChoice,
  };
}

/**
 * What the session statechart is made of: its types, the actors hosts provide, and its named guards
 * and actions (each a pure function of the context, from the step modules). `session.ts` lays out
 * the states with them; sub-charts of their own (`manualState.ts`) use `createStateConfig`.
 */
export const sessionSetup = setup({
  types: {
    input: {} as SessionInput,
    context: {} as SessionContext,
    events: {} as SessionEvent,
    output: {} as SessionResult,
  },
  actors: {
    callModel: notProvided<ModelResponse, CallModelInput>('callModel'),
    triageToolCalls: notProvided<ToolCallTriage, TriageToolCallsInput>('triageToolCalls'),
    // Hosts run each call as a toolCall statechart (retries, fallbacks) behind this promise; tests may fake it whole.
    executeToolCall: notProvided<ToolCallOutcome, ExecuteToolCallInput>('executeToolCall'),
    rollBack: notProvided<RollbackReport, RollBackInput>('rollBack'),
    // Runs the agent's guardrails (user code: a host's) over content at one point.
    checkGuardrails: notProvided<GuardrailCheck, CheckGuardrailsInput>('checkGuardrails'),
    // The agent's workflow, compiled (`compiledWorkflow`): hosts provide it for sessions that have one.
    workflow: workflowNotProvided,
  },
  guards: {
    budgetLeavesNoRoom: ({ context }) => budgetSpentOut(context) !== undefined,
    asksForTooManyToolCalls: ({ context }) => asksForTooManyToolCalls(context),
    aRepairIsLeft: ({ context }) => aRepairIsLeft(context),
    // Text cut off by the output limit or a content filter is not an answer: it goes back for repair.
    isFinalAnswer: ({ context }) =>
      context.lastResponse !== null && context.lastResponse.toolCalls.length === 0 && context.lastResponse.refusal === null &&
      (context.lastResponse.content ?? '').trim() !== '' && !cutOffReasons.has(context.lastResponse.finishReason ?? ''),
    repairsExhausted: ({ context }) => repairsExhausted(context),
    canSwitchModel: ({ context }) => context.fallbackModels.length > 0,
    loopDetected: ({ context }) => loopEvidence(context) !== undefined,
    aCallIsInDoubt: ({ context }) => callsInDoubt(context).length > 0,
    alreadyRefocused: ({ context }) => context.refocused,
    hasAcceptedCalls: ({ context }) => context.accepted.length > 0,
    hasToolCalls: ({ context }) => (context.lastResponse?.toolCalls.length ?? 0) > 0,
    hasCallsToTriage: ({ context }) => callsToTriage(context).length > 0,
    needsApproval: ({ context }) => context.accepted.some((c) => c.requiresApproval && !c.approval),
    interruptRequested: ({ context }) => context.interruptRequested,
    answerOutsideItsPhase: ({ context }) => answerOutsideItsPhase(context),
    inputAwaitsCheck: ({ context }) => inputAwaitsCheck(context),
    inputChecksBeside: ({ context }) => context.inputChecks === 'beside',
    toolInputAwaitsCheck: ({ context }) => toolInputAwaitsCheck(context),
    toolOutputAwaitsCheck: ({ context }) => toolOutputAwaitsCheck(context),
    outputAwaitsCheck: ({ context }) => outputAwaitsCheck(context),
    awaitsPhaseApproval: ({ context }) => awaitsPhaseApproval(context),
    phaseBudgetSpent: ({ context }) => phaseBudgetSpent(context) !== undefined,
    allToolCallsAnswered: ({ context }) => context.accepted.every((call) => context.outcomes[call.callId] !== undefined),
  },
  actions: {
    startTurn: assign({ turn: ({ context }) => context.turn + 1 }),
    routeTurn: assign(({ context }) => ({ routingDecision: routeCurrentTurn(context) })),
    // Recorded screened: every tool call under an id of its own, the ones that cannot run already answered.
    recordModelResponse: assign(({ context }, received: ModelResponse) => recordedResponse(context, received)),
    // Beside the input guardrails, the answer waits for their verdict before the session reads it.
    holdModelResponse: assign((_, received: ModelResponse) => ({ heldResponse: received })),
    recordHeldModelResponse: assign(({ context }) => (context.heldResponse ? { ...recordedResponse(context, context.heldResponse), heldResponse: null } : {})),
    // An answer to input the guardrails then changed or refused is not read, but it was paid for.
    dropHeldResponse: assign(({ context }) => ({ heldResponse: null, ...(context.heldResponse ? { usage: addUsage(context.usage, { ...context.heldResponse.usage, costUsd: context.heldResponse.costUsd }) } : {}) })),
    askAgain: assign(({ context }) => ({
      turn: context.turn - 1, heldResponse: null,
      ...(context.heldResponse ? { usage: addUsage(context.usage, { ...context.heldResponse.usage, costUsd: context.heldResponse.costUsd }) } : {}),
    })),
    recordTriage: assign(({ context }, triage: ToolCallTriage) => ({
      accepted: triage.accepted, rejected: [...context.rejected, ...triage.rejected], approvalDeadline: triage.approvalDeadline ?? null,
    })),
    rejectTooManyToolCalls: assign(({ context }) => rejectTooManyToolCalls(context)),
    recordToolCallOutcome: assign(({ context }, outcome: ToolCallOutcome) => ({
      outcomes: { ...context.outcomes, [outcome.callId]: outcome },
      ...(outcome.status === 'ok' && outcome.cached ? { cache: { ...context.cache, toolHits: context.cache.toolHits + 1 } } : {}),
    })),
    // A specialist's spending counts against this session's budgets as soon as its answer arrives.
    recordDelegatedSpending: assign(({ context }, outcome: ToolCallOutcome) =>
      outcome.spent
        ? { usage: addUsage(context.usage, outcome.spent.usage), delegated: addSpending(context.delegated, outcome.spent) }
        : {}),
    recordToolResults: assign(({ context }) => answerEveryToolCall(context)),
    stopOpenToolCalls: enqueueActions(({ context, enqueue }) => {
      for (const call of context.accepted) {
        if (context.outcomes[call.callId] === undefined) enqueue.stopChild(`${toolCallActorPrefix}${call.callId}`);
      }
    }),
    abandonOpenToolCalls: assign(({ context }) => abandonOpenToolCalls(context)),
    // A finished call's actor would otherwise stay among the session's children, in memory and in
    // every checkpoint, for the rest of the session.
    forgetFinishedToolCall: stopChild(({ event }) => (event as { actorId: string }).actorId),
    approveCalls: assign(({ context }, decision: { by: string; at: string; callIds?: string[] }) => approveCalls(context, decision)),
    denyCalls: assign(({ context }, decision: { reason: string; by?: string; callIds?: string[] }) => denyCalls(context, decision)),
    expireApproval: assign(({ context }) => denyCalls(context, { reason: 'the approval expired before anyone decided.' }, 'approval_expired')),
    clearApprovalDeadline: assign({ approvalDeadline: null }),
    recordIntervention: assign(({ context }, intervention: Omit<Intervention, 'turn'>) => withIntervention(context, intervention)),
    startTakeover: assign(({ context }, by: string) => takeOver(context, by)),
    recordManualTriage: assign((_, triage: ToolCallTriage) => acceptManualTriage(triage)),
    recordManualCall: assign(({ context }, params: { request: { toolCallId: string; tool: string; arguments: string }; outcome?: ToolCallOutcome }) => recordManualCall(context, params)),
    handBack: assign(({ context }, instruction: string | undefined) => handBack(context, instruction)),
    recordRollback: assign(({ context }, report: RollbackReport) => recordRollback(context, report)),
    requestInterrupt: assign({ interruptRequested: true }),
    clearInterrupt: assign({ interruptRequested: false }),
    keepInstruction: assign(({ context }, redirect: { instruction: string; by?: string | undefined }) => keepInstruction(context, redirect.instruction, redirect.by)),
    deliverInstructions: assign(({ context }) => deliverInstructions(context)),
    askForRepair: assign(({ context }) => requestRepair(context)),
    switchToFallbackModel: assign(({ context }) => switchToNextModel(context)),
    refocus: assign(({ context }) => refocusOnLoop(context)),
    escalateLoop: assign(({ context }) => escalateOnLoop(context)),
    escalateInDoubt: assign(({ context }) => escalateInDoubt(context)),
    recordHumanAnswer: assign(({ context }, answer: string) => resumeWithAnswer(context, answer)),
    // The workflow's actor takes the same transition as the phase in the context: the inspector shows it live.
    startWorkflow: enqueueActions(({ context, enqueue }) => {
      if (context.workflow) enqueue.spawnChild('workflow', { id: workflowActorId });
    }),
    advancePhase: enqueueActions(({ context, enqueue }) => {
      const { update, moved } = advancePhase(context);
      enqueue.assign(update);
      if (moved) enqueue.sendTo(workflowActorId, moved);
    }),
    refuseAnswerInPhase: assign(({ context }) => refuseAnswerInPhase(context)),
    applyInputCheck: assign(({ context }, check: GuardrailCheck) => applyInputCheck(context, check)),
    applyToolInputCheck: assign(({ context }, check: GuardrailCheck) => applyToolInputCheck(context, check)),
    applyToolOutputCheck: assign(({ context }, check: GuardrailCheck) => applyToolOutputCheck(context, check)),
    applyOutputCheck: assign(({ context }, check: GuardrailCheck) => applyOutputCheck(context, check)),
    recordBlock: assign(({ context }, check: GuardrailCheck) => recordBlock(context, check)),
    decidePhaseExit: enqueueActions(({ context, enqueue }, decision: { approved: boolean; by: string; reason?: string; expired?: boolean }) => {
      const { update, moved } = decidePhaseExit(context, decision);
      enqueue.assign(update);
      if (moved) enqueue.sendTo(workflowActorId, moved);
    }),
    setApprovalDeadline: assign((_, at: number) => ({ approvalDeadline: at })),
    recordPhaseBudgetStop: assign(({ context }) => {
      const spent = phaseBudgetSpent(context);
      const budget = spent?.budget ?? BudgetName.maxSteps;
      return { outcome: { status: 'budget_exhausted' as const, stopReason: `budget exhausted: ${budget} of the phase "${spent?.phases.join(' › ') ?? ''}"`, budget, output: latestText(context) } };
    }),
    recordAnswer: assign(({ context }) => ({ outcome: { status: 'completed' as const, stopReason: 'answered' as const, output: latestText(context) ?? '' } })),
    recordBudgetStop: assign(({ context }, budget: BudgetName) => ({
      outcome: { status: 'budget_exhausted' as const, stopReason: `budget exhausted: ${budget}`, budget, output: latestText(context) },
    })),
    recordFailure: assign(({ context }, params: { stopReason: string; error: string }) => ({ outcome: { status: 'failed' as const, ...params, output: latestText(context) } })),
    recordCancellation: assign(({ context }, reason: string) => ({ outcome: { status: 'cancelled' as const, stopReason: `cancelled: ${reason}`, output: latestText(context) } })),
    recordEscalation: assign(({ context }, reason: string) => ({ outcome: { status: 'escalated' as const, stopReason: `escalated: ${reason}`, output: latestText(context) } })),
  },
});
