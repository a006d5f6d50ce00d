import { and, assign, enqueueActions, fromPromise, not, setup, stateIn, stopChild } from 'xstate';
import { BudgetName, budgetExhaustedBeforeModelCall } from './budgets.ts';
import { addSpending, stepsSpent } from './delegation.ts';
import { calibrate } from './contextAssembly.ts';
import { routeCurrentTurn } from './turnFacts.ts';
import type { ModelResponse } from './conversation.ts';
import type { CallModelInput, ExecuteToolCallInput, RollBackInput, SessionEvent, TriageToolCallsInput } from './sessionProtocol.ts';
import type { Intervention } from './ledger.ts';
import { aRepairIsLeft, callsInDoubt, escalateInDoubt, escalateOnLoop, loopEvidence, refocusOnLoop, repairsExhausted, requestRepair, resumeWithAnswer, switchToNextModel } from './recoverySteps.ts';
import { latestText, sessionResultOf, type SessionContext, type SessionInput } from './sessionContext.ts';
export { sessionResultOf } from './sessionContext.ts';
import type { SessionResult } from './sessionOutcome.ts';
import { initialSessionContext } from './initialSessionContext.ts';
import {
  acceptManualTriage, approveCalls, deliverInstructions, denyCalls, handBack, keepInstruction, recordManualCall, recordRollback, takeOver, withIntervention,
} from './humanControlSteps.ts';
import { rollbackPlan, type RollbackReport } from './rollback.ts';
import { abandonOpenToolCalls, answerEveryToolCall } from './toolAnswers.ts';
import { asksForTooManyToolCalls, callsToTriage, rejectTooManyToolCalls, screenModelResponse } from './toolCallScreening.ts';
import type { PlannedToolCall, ToolCallOutcome, ToolCallTriage } from './toolCallOutcome.ts';
import { addUsage } from './usage.ts';

export type { SessionContext, SessionInput } from './sessionContext.ts';

export type { CallModelInput, ExecuteToolCallInput, RollBackInput, SessionEvent, TriageToolCallsInput } from './sessionProtocol.ts';

const toolCallActorPrefix = 'tool:';
const cutOffReasons: ReadonlySet<string> = new Set(['length', 'content_filter']);

// Placeholders that fail loudly: every host provides the real actors through `session.provide`.
function notProvided<Output, Input>(name: string) {
  return fromPromise<Output, Input>(async () => {
    throw new Error(`The session actor "${name}" was not provided: use sessionMachine.provide({ actors: { ${name} } }).`);
  });
}


const budgetSpentOut = (context: SessionContext) =>
  budgetExhaustedBeforeModelCall(
    { steps: stepsSpent(context), totalTokens: context.usage.inputTokens + context.usage.outputTokens, costUsd: context.usage.costUsd },
    context.budgets,
  );

/**
 * The agent loop as a statechart:
 * preparing → calling_model → validating → running_tools → observing → preparing …
 * until the model answers (`completed`), a budget runs out (`budget_exhausted`), a person takes
 * over (`escalated`), something unrecoverable happens (`failed`) or the caller cancels.
 *
 * Pure: the model call, the tool-call triage and the tool calls themselves are actors the host
 * provides; the wall-clock budget is a deadline in context whose timer the host arms (and re-arms
 * after a restore) and reports as `session.deadline_reached`.
 */
export const sessionMachine = setup({
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
    allToolCallsAnswered: ({ context }) => context.accepted.every((call) => context.outcomes[call.callId] !== undefined),
  },
  actions: {
    startTurn: assign({ turn: ({ context }) => context.turn + 1 }),
    routeTurn: assign(({ context }) => ({ routingDecision: routeCurrentTurn(context) })),
    // Recorded screened: every tool call under an id of its own, the ones that cannot run already answered.
    recordModelResponse: assign(({ context }, received: ModelResponse) => {
      const { response, rejected } = screenModelResponse(received);
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
      };
    }),
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
    keepInstruction: assign(({ context }, instruction: string) => keepInstruction(context, instruction)),
    deliverInstructions: assign(({ context }) => deliverInstructions(context)),
    askForRepair: assign(({ context }) => requestRepair(context)),
    switchToFallbackModel: assign(({ context }) => switchToNextModel(context)),
    refocus: assign(({ context }) => refocusOnLoop(context)),
    escalateLoop: assign(({ context }) => escalateOnLoop(context)),
    escalateInDoubt: assign(({ context }) => escalateInDoubt(context)),
    recordHumanAnswer: assign(({ context }, answer: string) => resumeWithAnswer(context, answer)),
    recordAnswer: assign(({ context }) => ({ outcome: { status: 'completed' as const, stopReason: 'answered' as const, output: latestText(context) ?? '' } })),
    recordBudgetStop: assign(({ context }, budget: BudgetName) => ({
      outcome: { status: 'budget_exhausted' as const, stopReason: `budget exhausted: ${budget}`, budget, output: latestText(context) },
    })),
    recordFailure: assign(({ context }, params: { stopReason: string; error: string }) => ({ outcome: { status: 'failed' as const, ...params, output: latestText(context) } })),
    recordCancellation: assign(({ context }, reason: string) => ({ outcome: { status: 'cancelled' as const, stopReason: `cancelled: ${reason}`, output: latestText(context) } })),
    recordEscalation: assign(({ context }, reason: string) => ({ outcome: { status: 'escalated' as const, stopReason: `escalated: ${reason}`, output: latestText(context) } })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => initialSessionContext(input),
  initial: 'preparing',
  output: ({ context }) => sessionResultOf(context),
  on: {
    'session.cancel': {
      target: '.cancelled',
      actions: [
        { type: 'recordCancellation', params: ({ event }) => event.reason },
        { type: 'recordIntervention', params: ({ event }) => ({ kind: 'cancelled' as const, detail: event.reason }) },
      ],
    },
    'session.escalate': [
      {
        // Tool calls in flight are stopped and answered first: a resumed conversation must be valid for the API.
        guard: stateIn('running_tools'),
        target: '.escalated',
        actions: [
          'stopOpenToolCalls', 'abandonOpenToolCalls', { type: 'recordEscalation', params: ({ event }) => event.reason },
          { type: 'recordIntervention', params: ({ event }) => ({ kind: 'escalated' as const, detail: event.reason }) },
        ],
      },
      {
        target: '.escalated',
        actions: [
          { type: 'recordEscalation', params: ({ event }) => event.reason },
          { type: 'recordIntervention', params: ({ event }) => ({ kind: 'escalated' as const, detail: event.reason }) },
        ],
      },
    ],
    'session.interrupt': { actions: ['requestInterrupt', { type: 'recordIntervention', params: { kind: 'interrupted' } }] },
    'session.redirect': { actions: { type: 'keepInstruction', params: ({ event }) => event.instruction } },
    // The wall clock stops mattering once the session is parked with a person.
    'session.deadline_reached': {
      guard: and([not(stateIn('escalated')), not(stateIn('interrupted')), not(stateIn('manual'))]),
      target: '.budget_exhausted',
      actions: { type: 'recordBudgetStop', params: BudgetName.maxWallClockMs },
    },
  },

  states: {
    preparing: {
      entry: 'deliverInstructions',
      always: [
        { guard: 'interruptRequested', target: 'interrupted', actions: 'clearInterrupt' },
        {
          guard: 'budgetLeavesNoRoom',
          target: 'budget_exhausted',
          actions: {
            type: 'recordBudgetStop',
            params: ({ context }) => budgetSpentOut(context) ?? BudgetName.maxSteps,
          },
        },
        { target: 'calling_model' },
      ],
    },
    calling_model: {
      entry: ['startTurn', 'routeTurn'],
      invoke: {
        id: 'callModel',
        src: 'callModel',
        input: ({ context }) => ({
          sessionId: context.sessionId, turn: context.turn, model: context.routingDecision?.model ?? context.model, fallbackModels: context.fallbackModels,
          messages: context.conversation, summary: context.summary, ledger: context.ledger, contextSettings: context.contextSettings, calibration: context.contextCalibration,
        }),
        onDone: { target: 'validating', actions: { type: 'recordModelResponse', params: ({ event }) => event.output } },
        onError: {
          target: 'failed',
          actions: {
            type: 'recordFailure',
            params: ({ event }) => ({ stopReason: 'model call failed', error: errorMessage(event.error) }),
          },
        },
      },
    },
    validating: {
      initial: 'routing',
      states: {
        routing: {
          always: [
            // Too many calls: none runs, and the model is told the limit; the budget ends the session
            // only when the repairs have run out.
            {
              guard: and(['asksForTooManyToolCalls', not('aRepairIsLeft')]),
              target: '#session.budget_exhausted',
              actions: { type: 'recordBudgetStop', params: BudgetName.maxToolCallsPerTurn },
            },
            { guard: 'asksForTooManyToolCalls', target: '#session.observing', actions: 'rejectTooManyToolCalls' },
            { guard: 'isFinalAnswer', target: '#session.completed', actions: 'recordAnswer' },
            { guard: 'hasCallsToTriage', target: 'triaging_tool_calls' },
            // Every call was already answered by the screening (say, each one lacked a tool name).
            { guard: 'hasToolCalls', target: '#session.observing' },
            // Neither an answer nor tool calls (empty, or a refusal): ask the model to repair it.
            { target: '#session.repairing', actions: 'askForRepair' },
          ],
        },
        triaging_tool_calls: {
          invoke: {
            id: 'triageToolCalls',
            src: 'triageToolCalls',
            input: ({ context }) => ({ sessionId: context.sessionId, turn: context.turn, toolCalls: callsToTriage(context) }),
            onDone: { target: 'triaged', actions: { type: 'recordTriage', params: ({ event }) => event.output } },
            onError: {
              target: '#session.failed',
              actions: {
                type: 'recordFailure',
                params: ({ event }) => ({ stopReason: 'tool call triage failed', error: errorMessage(event.error) }),
              },
            },
          },
        },
        triaged: {
          always: [
            { guard: 'needsApproval', target: '#session.awaiting_approval' },
            { guard: 'hasAcceptedCalls', target: '#session.running_tools' },
            { target: '#session.observing' },
          ],
        },
      },
    },
    // Calls that need a person's approval wait here; the others wait with them, so the turn stays one turn.
    awaiting_approval: {
      on: {
        'session.approve': { actions: { type: 'approveCalls', params: ({ event }) => event } },
        'session.deny': { actions: { type: 'denyCalls', params: ({ event }) => event } },
        'session.approval_expired': { actions: 'expireApproval' },
      },
      always: [
        { guard: and([not('needsApproval'), 'hasAcceptedCalls']), target: 'running_tools', actions: 'clearApprovalDeadline' },
        { guard: not('needsApproval'), target: 'observing', actions: 'clearApprovalDeadline' },
      ],
    },
    // Paused by a person at a safe point (between turns); a redirect or a continue resumes it.
    interrupted: {
      on: {
        'session.rollback': { target: 'rolling_back' },
        'session.redirect': { target: 'preparing', actions: { type: 'keepInstruction', params: ({ event }) => event.instruction } },
        'session.continue': { target: 'preparing', actions: { type: 'recordIntervention', params: { kind: 'continued' } } },
      },
    },
    // Undoing executed calls in reverse order; the session then waits, paused, for the person.
    rolling_back: {
      invoke: {
        id: 'rollBack',
        src: 'rollBack',
        input: ({ context, event }) => {
          const { toTurn, by } = event as Extract<SessionEvent, { type: 'session.rollback' }>;
          return { sessionId: context.sessionId, toTurn, by, plan: rollbackPlan(context.ledger, toTurn) };
        },
        onDone: { target: 'interrupted', actions: { type: 'recordRollback', params: ({ event }) => event.output } },
        onError: { target: 'interrupted' },
      },
    },
    running_tools: {
      entry: enqueueActions(({ context, enqueue }) => {
        for (const call of context.accepted) {
          enqueue.spawnChild('executeToolCall', {
            id: `${toolCallActorPrefix}${call.callId}`,
            input: { sessionId: context.sessionId, turn: context.turn, call },
          });
        }
      }),
      on: {
        'xstate.done.actor.*': {
          actions: [
            { type: 'recordToolCallOutcome', params: ({ event }) => event.output },
            { type: 'recordDelegatedSpending', params: ({ event }) => event.output },
            'forgetFinishedToolCall',
          ],
        },
        'xstate.error.actor.*': {
          // executeToolCall reports failures as data; a rejection here is a bug in the host, still answered.
          actions: [{
            type: 'recordToolCallOutcome',
            params: ({ event }) => {
              const { actorId, error } = event;
              return {
                status: 'error' as const,
                callId: actorId.slice(toolCallActorPrefix.length),
                failure: { code: 'INTERNAL' as const, message: `The tool call failed inside the orchestrator: ${errorMessage(error)}`, retryable: false },
                durationMs: 0,
              };
            },
          }, 'forgetFinishedToolCall'],
        },
      },
      always: { guard: 'allToolCallsAnswered', target: 'observing' },
    },
    observing: {
      entry: 'recordToolResults',
      always: [
        { guard: 'aCallIsInDoubt', target: 'escalated', actions: 'escalateInDoubt' },
        { guard: 'repairsExhausted', target: 'switching_model' },
        // A loop gets one refocusing message; a loop after that goes to a person.
        { guard: and(['loopDetected', 'alreadyRefocused']), target: 'escalated', actions: 'escalateLoop' },
        { guard: 'loopDetected', target: 'preparing', actions: 'refocus' },
        { target: 'preparing' },
      ],
    },
    repairing: {
      always: [{ guard: 'repairsExhausted', target: 'switching_model' }, { target: 'preparing' }],
    },
    switching_model: {
      always: [
        { guard: 'canSwitchModel', target: 'preparing', actions: 'switchToFallbackModel' },
        {
          target: 'failed',
          actions: {
            type: 'recordFailure',
            params: ({ context }) => ({
              stopReason: 'malformed model output',
              error: `The model produced malformed output ${context.consecutiveRepairs} turns in a row (${context.notices.at(-1)?.kind === 'repair' ? (context.notices.at(-1) as { reason: string }).reason : 'see the events'}), and no fallback model is left.`,
            }),
          },
        },
      ],
    },
    completed: { type: 'final' },
    budget_exhausted: { type: 'final' },
    // Parked, not final: the session waits for a person, whose answer resumes the loop.
    escalated: {
      on: {
        'session.answer': {
          target: 'preparing',
          actions: [
            { type: 'recordHumanAnswer', params: ({ event }) => event.answer },
            { type: 'recordIntervention', params: ({ event }) => ({ kind: 'answered' as const, detail: event.answer }) },
          ],
        },
        'session.escalate': {},
        'session.rollback': { target: 'rolling_back' },
        'session.takeover': { target: 'manual', actions: { type: 'startTakeover', params: ({ event }) => event.by } },
      },
    },
    // Taken over: the person calls tools through the session, each one triaged, run and recorded
    // like the model's, until they hand it back.
    manual: {
      initial: 'idle',
      on: {
        'session.handback': { target: 'preparing', actions: { type: 'handBack', params: ({ event }) => event.instruction } },
      },
      states: {
        idle: {
          on: { 'session.manual_call': { target: 'triaging' } },
        },
        triaging: {
          invoke: {
            id: 'manualTriage',
            src: 'triageToolCalls',
            input: ({ context, event }) => {
              const call = event as Extract<SessionEvent, { type: 'session.manual_call' }>;
              return { sessionId: context.sessionId, turn: context.turn, toolCalls: [{ id: call.toolCallId, name: call.tool, arguments: call.arguments }] };
            },
            onDone: [
              {
                guard: ({ event }) => event.output.accepted.length > 0,
                target: 'executing',
                actions: { type: 'recordManualTriage', params: ({ event }) => event.output },
              },
              {
                target: 'idle',
                actions: [
                  { type: 'recordManualTriage', params: ({ event }) => event.output },
                  {
                    type: 'recordManualCall',
                    params: ({ event }) => {
                      const r = event.output.rejected[0];
                      return { request: { toolCallId: r?.toolCallId ?? '', tool: r?.name ?? '', arguments: r?.rawArguments ?? '' } };
                    },
                  },
                ],
              },
            ],
            onError: { target: 'idle' },
          },
        },
        executing: {
          invoke: {
            id: 'manualCall',
            src: 'executeToolCall',
            input: ({ context }) => ({ sessionId: context.sessionId, turn: context.turn, call: context.accepted[0] as PlannedToolCall }),
            onDone: {
              target: 'idle',
              actions: [
                {
                  type: 'recordManualCall',
                  params: ({ context, event }) => {
                    const call = context.accepted[0] as PlannedToolCall;
                    return { request: { toolCallId: call.toolCallId, tool: call.name, arguments: JSON.stringify(call.arguments) }, outcome: event.output };
                  },
                },
                { type: 'recordDelegatedSpending', params: ({ event }) => event.output },
              ],
            },
            onError: { target: 'idle' },
          },
        },
      },
    },
    failed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;


function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
