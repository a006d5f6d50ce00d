import { and, assign, enqueueActions, fromPromise, not, setup, stateIn, type DoneActorEvent, type ErrorActorEvent } from 'xstate';
import { BudgetName, budgetExhaustedBeforeModelCall, type Budgets } from './budgets.ts';
import type { ChatMessage, ModelResponse, ModelToolCall } from './conversation.ts';
import { digestOf, type LedgerEntry } from './ledger.ts';
import { describeLoop, detectLoop } from './loopDetection.ts';
import type { RecoveryNotice, RecoverySettings } from './recovery.ts';
import type { SessionOutcome, SessionResult } from './sessionOutcome.ts';
import type { PlannedToolCall, RejectedToolCall, ToolCallOutcome, ToolCallTriage } from './toolCallOutcome.ts';
import { addUsage, noUsage, type Usage } from './usage.ts';

/** What a session starts from. `startedAt` comes from the host: the machine reads no clock. */
export interface SessionInput {
  sessionId: string;
  agentName: string;
  model: string;
  instructions: string;
  task: string;
  budgets: Budgets;
  recovery: RecoverySettings;
  /** Models to switch to, in order, when the current one keeps producing malformed output. */
  fallbackModels: string[];
  startedAt: number;
}

/** The explicit, serialisable state of a session: what is checkpointed and what the model's context is built from. */
export interface SessionContext extends SessionInput {
  conversation: ChatMessage[];
  ledger: LedgerEntry[];
  /** Model calls made so far; the current turn's number while one runs. */
  turn: number;
  toolCalls: number;
  usage: Usage;
  lastResponse: ModelResponse | null;
  /** This turn's tool calls: accepted ones wait for an outcome, rejected ones already have their answer. */
  accepted: PlannedToolCall[];
  rejected: RejectedToolCall[];
  outcomes: Record<string, ToolCallOutcome>;
  outcome: SessionOutcome | null;
  /** Turns in a row whose output had to be sent back for repair. */
  consecutiveRepairs: number;
  /** Loop detection looks at the ledger from this turn on (it restarts after a refocus). */
  loopCheckFromTurn: number;
  refocused: boolean;
  notices: RecoveryNotice[];
}

export type SessionEvent =
  | { type: 'session.cancel'; reason: string }
  | { type: 'session.escalate'; reason: string }
  /** A person's answer to an escalated session: it goes to the model and the loop resumes. */
  | { type: 'session.answer'; answer: string }
  // Tool-call children report here; their ids are `tool:<callId>`.
  | DoneActorEvent<ToolCallOutcome, string>
  | ErrorActorEvent<unknown, string>;

export interface CallModelInput {
  sessionId: string;
  turn: number;
  model: string;
  /** Models to try, in order, when `model` keeps failing at the API level. */
  fallbackModels: string[];
  messages: ChatMessage[];
}
export interface TriageToolCallsInput {
  sessionId: string;
  turn: number;
  toolCalls: ModelToolCall[];
}
export interface ExecuteToolCallInput {
  sessionId: string;
  turn: number;
  call: PlannedToolCall;
}

const toolCallActorPrefix = 'tool:';

// Placeholders that fail loudly: every host provides the real actors through `session.provide`.
function notProvided<Output, Input>(name: string) {
  return fromPromise<Output, Input>(async () => {
    throw new Error(`The session actor "${name}" was not provided: use sessionMachine.provide({ actors: { ${name} } }).`);
  });
}

const latestText = (context: SessionContext): string | null => context.lastResponse?.content ?? null;

const loopEvidence = (context: SessionContext) => detectLoop(context.ledger, context.recovery.loop, context.loopCheckFromTurn);
const repairsExhausted = (context: SessionContext) => context.consecutiveRepairs >= context.recovery.maxConsecutiveRepairs;

const budgetSpentOut = (context: SessionContext) =>
  budgetExhaustedBeforeModelCall(
    { steps: context.turn, totalTokens: context.usage.inputTokens + context.usage.outputTokens, costUsd: context.usage.costUsd },
    context.budgets,
  );

/** The tool result message the model reads: structured, with explicit success or failure. */
function toolMessageContent(outcome: ToolCallOutcome | { status: 'rejected'; failure: RejectedToolCall['failure'] }): string {
  return outcome.status === 'ok' ? JSON.stringify({ ok: true, result: outcome.result }) : JSON.stringify({ ok: false, error: outcome.failure });
}

/**
 * The agent loop as a statechart:
 * preparing → calling_model → validating → running_tools → observing → preparing …
 * until the model answers (`completed`), a budget runs out (`budget_exhausted`), a person takes
 * over (`escalated`), something unrecoverable happens (`failed`) or the caller cancels.
 *
 * Pure: the model call, the tool-call triage and the tool calls themselves are actors the host
 * provides; the wall-clock budget is the `wallClockBudget` delay, which a host resuming a session
 * replaces with the time that is left.
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
  },
  delays: {
    wallClockBudget: ({ context }) => context.budgets.maxWallClockMs,
  },
  guards: {
    budgetLeavesNoRoom: ({ context }) => budgetSpentOut(context) !== undefined,
    asksForTooManyToolCalls: ({ context }) =>
      (context.lastResponse?.toolCalls.length ?? 0) > context.budgets.maxToolCallsPerTurn,
    isFinalAnswer: ({ context }) =>
      context.lastResponse !== null && context.lastResponse.toolCalls.length === 0 && context.lastResponse.refusal === null &&
      (context.lastResponse.content ?? '').trim() !== '',
    repairsExhausted: ({ context }) => repairsExhausted(context),
    canSwitchModel: ({ context }) => context.fallbackModels.length > 0,
    loopDetected: ({ context }) => loopEvidence(context) !== undefined,
    alreadyRefocused: ({ context }) => context.refocused,
    hasAcceptedCalls: ({ context }) => context.accepted.length > 0,
    hasToolCalls: ({ context }) => (context.lastResponse?.toolCalls.length ?? 0) > 0,
    allToolCallsAnswered: ({ context }) => context.accepted.every((call) => context.outcomes[call.callId] !== undefined),
  },
  actions: {
    startTurn: assign({ turn: ({ context }) => context.turn + 1 }),
    recordModelResponse: assign(({ context }, response: ModelResponse) => ({
      lastResponse: response,
      usage: addUsage(context.usage, { ...response.usage, costUsd: response.costUsd }),
      conversation: [
        ...context.conversation,
        response.toolCalls.length > 0
          ? { role: 'assistant' as const, content: response.content, toolCalls: response.toolCalls }
          : { role: 'assistant' as const, content: response.content },
      ],
      accepted: [],
      rejected: [],
      outcomes: {},
    })),
    recordTriage: assign((_, triage: ToolCallTriage) => ({ accepted: triage.accepted, rejected: triage.rejected })),
    recordToolCallOutcome: assign(({ context }, outcome: ToolCallOutcome) => ({
      outcomes: { ...context.outcomes, [outcome.callId]: outcome },
    })),
    recordToolResults: assign(({ context }) => {
      const asked = context.lastResponse?.toolCalls ?? [];
      const messages: ChatMessage[] = [];
      const entries: LedgerEntry[] = [];
      // Every tool call the model made gets exactly one answer, in the order it asked.
      for (const request of asked) {
        const call = context.accepted.find((c) => c.toolCallId === request.id);
        const outcome = call ? context.outcomes[call.callId] : undefined;
        const rejection = context.rejected.find((r) => r.toolCallId === request.id);
        if (call && outcome) {
          const content = toolMessageContent(outcome);
          const entry: LedgerEntry = {
            turn: context.turn, callId: call.callId, toolCallId: request.id, tool: call.name,
            arguments: call.arguments, status: outcome.status, durationMs: outcome.durationMs, resultDigest: digestOf(content),
          };
          if (outcome.status === 'error') entry.errorCode = outcome.failure.code;
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
      const repaired = context.rejected.length > 0;
      const consecutiveRepairs = repaired ? context.consecutiveRepairs + 1 : 0;
      const notices: RecoveryNotice[] = repaired
        ? [...context.notices, { kind: 'repair', turn: context.turn, consecutive: consecutiveRepairs,
            reason: context.rejected.map((r) => `${r.name}: ${r.failure.code}`).join(', ') }]
        : context.notices;
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
    }),
    askForRepair: assign(({ context }) => {
      const response = context.lastResponse;
      const reason = response?.refusal ? `refusal: ${response.refusal}` : 'empty response';
      const instruction = response?.refusal
        ? `You declined with: "${response.refusal}". If the task can be done with the available tools, continue; if not, say precisely what is missing.`
        : 'Your last reply was empty: it had neither text nor tool calls. Call one of the tools, or answer the task in text.';
      const consecutiveRepairs = context.consecutiveRepairs + 1;
      return {
        consecutiveRepairs,
        conversation: [...context.conversation, { role: 'user' as const, content: instruction }],
        notices: [...context.notices, { kind: 'repair' as const, turn: context.turn, reason, consecutive: consecutiveRepairs }],
      };
    }),
    switchToFallbackModel: assign(({ context }) => {
      const [next, ...rest] = context.fallbackModels;
      const to = next ?? context.model;
      return {
        model: to,
        fallbackModels: rest,
        consecutiveRepairs: 0,
        notices: [...context.notices, { kind: 'model_switched' as const, turn: context.turn, from: context.model, to,
          reason: `${context.consecutiveRepairs} consecutive turns of malformed output` }],
      };
    }),
    refocus: assign(({ context }) => {
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
    }),
    escalateLoop: assign(({ context }) => {
      const evidence = loopEvidence(context);
      const description = evidence ? describeLoop(evidence) : 'The session kept repeating itself.';
      return {
        outcome: { status: 'escalated' as const, stopReason: `escalated: loop detected after a refocus. ${description}`, output: latestText(context) },
        notices: evidence
          ? [...context.notices, { kind: 'loop_detected' as const, turn: context.turn, action: 'escalate' as const, evidence, description }]
          : context.notices,
      };
    }),
    recordHumanAnswer: assign(({ context }, answer: string) => ({
      conversation: [...context.conversation, { role: 'user' as const, content: answer }],
      outcome: null,
      refocused: false,
      loopCheckFromTurn: context.turn + 1,
      consecutiveRepairs: 0,
    })),
    recordAnswer: assign({
      outcome: ({ context }) => ({ status: 'completed', stopReason: 'answered', output: latestText(context) ?? '' }),
    }),
    recordBudgetStop: assign(({ context }, budget: BudgetName) => ({
      outcome: { status: 'budget_exhausted', stopReason: `budget exhausted: ${budget}`, budget, output: latestText(context) },
    })),
    recordFailure: assign(({ context }, params: { stopReason: string; error: string }) => ({
      outcome: { status: 'failed', ...params, output: latestText(context) },
    })),
    recordCancellation: assign(({ context }, reason: string) => ({
      outcome: { status: 'cancelled', stopReason: `cancelled: ${reason}`, output: latestText(context) },
    })),
    recordEscalation: assign(({ context }, reason: string) => ({
      outcome: { status: 'escalated', stopReason: `escalated: ${reason}`, output: latestText(context) },
    })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({
    ...input,
    conversation: [
      { role: 'system', content: input.instructions },
      { role: 'user', content: input.task },
    ],
    ledger: [],
    turn: 0,
    toolCalls: 0,
    usage: noUsage,
    lastResponse: null,
    accepted: [],
    rejected: [],
    outcomes: {},
    outcome: null,
    consecutiveRepairs: 0,
    loopCheckFromTurn: 1,
    refocused: false,
    notices: [],
  }),
  initial: 'preparing',
  output: ({ context }) => sessionResultOf(context),
  on: {
    'session.cancel': { target: '.cancelled', actions: { type: 'recordCancellation', params: ({ event }) => event.reason } },
    'session.escalate': { target: '.escalated', actions: { type: 'recordEscalation', params: ({ event }) => event.reason } },
  },
  after: {
    // The wall clock stops mattering once the session is parked with a person.
    wallClockBudget: {
      guard: not(stateIn('escalated')),
      target: '.budget_exhausted',
      actions: { type: 'recordBudgetStop', params: BudgetName.maxWallClockMs },
    },
  },
  states: {
    preparing: {
      always: [
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
      entry: 'startTurn',
      invoke: {
        id: 'callModel',
        src: 'callModel',
        input: ({ context }) => ({
          sessionId: context.sessionId, turn: context.turn, model: context.model, fallbackModels: context.fallbackModels, messages: context.conversation,
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
            {
              guard: 'asksForTooManyToolCalls',
              target: '#session.budget_exhausted',
              actions: { type: 'recordBudgetStop', params: BudgetName.maxToolCallsPerTurn },
            },
            { guard: 'isFinalAnswer', target: '#session.completed', actions: 'recordAnswer' },
            { guard: 'hasToolCalls', target: 'triaging_tool_calls' },
            // Neither an answer nor tool calls (empty, or a refusal): ask the model to repair it.
            { target: '#session.repairing', actions: 'askForRepair' },
          ],
        },
        triaging_tool_calls: {
          invoke: {
            id: 'triageToolCalls',
            src: 'triageToolCalls',
            input: ({ context }) => ({ sessionId: context.sessionId, turn: context.turn, toolCalls: context.lastResponse?.toolCalls ?? [] }),
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
          always: [{ guard: 'hasAcceptedCalls', target: '#session.running_tools' }, { target: '#session.observing' }],
        },
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
          actions: { type: 'recordToolCallOutcome', params: ({ event }) => event.output },
        },
        'xstate.error.actor.*': {
          // executeToolCall reports failures as data; a rejection here is a bug in the host, still answered.
          actions: {
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
          },
        },
      },
      always: { guard: 'allToolCallsAnswered', target: 'observing' },
    },
    observing: {
      entry: 'recordToolResults',
      always: [
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
        'session.answer': { target: 'preparing', actions: { type: 'recordHumanAnswer', params: ({ event }) => event.answer } },
        'session.escalate': {},
      },
    },
    failed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;

/** The session's result as it stands: its output when final, and what a parked (escalated) session reports. */
export function sessionResultOf(context: SessionContext): SessionResult {
  return {
    outcome: context.outcome ?? { status: 'failed', stopReason: 'internal', error: 'The session ended without an outcome.', output: null },
    steps: context.turn,
    toolCalls: context.toolCalls,
    usage: context.usage,
    ledger: context.ledger,
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
