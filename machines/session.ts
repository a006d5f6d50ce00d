import { and, enqueueActions, not, stateIn } from 'xstate';
import { BudgetName } from './budgets.ts';
import { sessionResultOf } from './sessionContext.ts';
import { initialSessionContext } from './initialSessionContext.ts';
import { manualState } from './manualState.ts';
import { rollbackPlan } from './rollback.ts';
import type { SessionEvent } from './sessionProtocol.ts';
import { budgetSpentOut, errorMessage, sessionSetup, toolCallActorPrefix } from './sessionSetup.ts';
import { callsToTriage } from './toolCallScreening.ts';
import { currentOffer, messagesInPhase, phaseModel, phaseToolOffer } from './phaseSteps.ts';
import { blockOf, inputItems, outputItems, toolInputItems, toolOutputItems } from './guardrailSteps.ts';
import type { GuardrailPoint } from '../guardrails/defineGuardrail.ts';
import type { SessionContext } from './sessionContext.ts';
import type { CheckGuardrailsInput, GuardrailCheck } from './sessionProtocol.ts';

export { sessionResultOf } from './sessionContext.ts';
export type { SessionContext, SessionInput } from './sessionContext.ts';
export type { CallModelInput, ExecuteToolCallInput, RollBackInput, SessionEvent, TriageToolCallsInput } from './sessionProtocol.ts';

/** What a turn's model call is given: the transcript as the current phase shows it, within the context budget. */
const callModelInput = ({ context }: { context: SessionContext }) => ({
  sessionId: context.sessionId, turn: context.turn, model: phaseModel(context) ?? context.routingDecision?.model ?? context.model, fallbackModels: context.fallbackModels,
  messages: messagesInPhase(context), summary: context.summary, ledger: context.ledger, contextSettings: context.contextSettings, calibration: context.contextCalibration,
  offer: phaseToolOffer(context),
});

const modelCallFailed = {
  target: '#session.failed',
  actions: { type: 'recordFailure' as const, params: ({ event }: { event: { error: unknown } }) => ({ stopReason: 'model call failed', error: errorMessage(event.error) }) },
};

/** Where triaged (and checked) calls go: to a person's approval, to the workers, or straight to their answers. */
const toDispatch = [
  { guard: 'needsApproval', target: '#session.awaiting_approval' },
  { guard: 'hasAcceptedCalls', target: '#session.running_tools' },
  { target: '#session.observing' },
] as const;

/**
 * A state that runs the agent's guardrails at `point` over `items`: a block at input or output
 * ends the session `blocked`; otherwise `passed` applies what they decided (at the tool points, a
 * block is a refusal or a withheld result, part of what is applied).
 */
function guardrailCheck(
  point: GuardrailPoint,
  items: (context: SessionContext) => CheckGuardrailsInput['items'],
  passed: { then: string; apply: 'applyInputCheck' | 'applyToolInputCheck' | 'applyToolOutputCheck' | 'applyOutputCheck'; andThen?: 'recordAnswer' },
) {
  // A tripwire ends the session only where there is no call to refuse: what came in, what would go out.
  const ends = point === 'input' || point === 'output';
  const checked = ({ event }: { event: { output: GuardrailCheck } }) => event.output;
  return sessionSetup.createStateConfig({
    invoke: {
      id: 'checkGuardrails',
      src: 'checkGuardrails',
      input: ({ context }) => ({ sessionId: context.sessionId, turn: context.turn, point, phases: currentOffer(context)?.phases ?? [], items: items(context) }),
      onDone: [
        ...(ends ? [{ guard: ({ event }: { event: { output: GuardrailCheck } }) => blockOf(event.output) !== undefined, target: '#session.blocked', actions: { type: 'recordBlock' as const, params: checked } }] : []),
        { target: passed.then, actions: [{ type: passed.apply, params: checked }, ...(passed.andThen ? [passed.andThen] : [])] },
      ],
      onError: {
        target: '#session.failed',
        actions: { type: 'recordFailure', params: ({ event }) => ({ stopReason: `the ${point} guardrails failed`, error: errorMessage(event.error) }) },
      },
    },
  });
}

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
export const sessionMachine = sessionSetup.createMachine({
  id: 'session',
  context: ({ input }) => initialSessionContext(input),
  entry: 'startWorkflow',
  initial: 'preparing',
  output: ({ context }) => sessionResultOf(context),
  on: {
    'session.cancel': {
      target: '.cancelled',
      actions: [
        { type: 'recordCancellation', params: ({ event }) => event.reason },
        { type: 'recordIntervention', params: ({ event }) => ({ kind: 'cancelled' as const, detail: event.reason, ...(event.by ? { by: event.by } : {}) }) },
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
    'session.interrupt': { actions: ['requestInterrupt', { type: 'recordIntervention', params: ({ event }) => ({ kind: 'interrupted' as const, ...(event.by ? { by: event.by } : {}) }) }] },
    'session.redirect': { actions: { type: 'keepInstruction', params: ({ event }) => ({ instruction: event.instruction, by: event.by }) } },
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
        // People's words reach the model only once the input guardrails have let them through, or beside them.
        { guard: and(['inputAwaitsCheck', 'inputChecksBeside']), target: 'calling_model_beside_input_check' },
        { guard: 'inputAwaitsCheck', target: 'checking_input' },
        { guard: 'phaseBudgetSpent', target: 'budget_exhausted', actions: 'recordPhaseBudgetStop' },
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
    checking_input: guardrailCheck('input', inputItems, { then: '#session.preparing', apply: 'applyInputCheck' }),
    calling_model: {
      entry: ['startTurn', 'routeTurn'],
      invoke: {
        id: 'callModel',
        src: 'callModel',
        input: callModelInput,
        onDone: { target: 'validating', actions: { type: 'recordModelResponse', params: ({ event }) => event.output } },
        onError: modelCallFailed,
      },
    },
    // The input guardrails race the model call they guard (the agent's inputChecks: 'beside'): a pass
    // costs no latency, a block cancels the call, a rewrite cancels it and the turn is asked again.
    calling_model_beside_input_check: {
      type: 'parallel',
      entry: ['startTurn', 'routeTurn'],
      states: {
        model: {
          initial: 'calling',
          states: {
            calling: {
              invoke: {
                id: 'callModel',
                src: 'callModel',
                input: callModelInput,
                onDone: { target: 'answered', actions: { type: 'holdModelResponse', params: ({ event }) => event.output } },
                onError: modelCallFailed,
              },
            },
            answered: { type: 'final' },
          },
        },
        input: {
          initial: 'checking',
          states: {
            checking: {
              invoke: {
                id: 'checkGuardrails',
                src: 'checkGuardrails',
                input: ({ context }) => ({ sessionId: context.sessionId, turn: context.turn, point: 'input' as const, phases: currentOffer(context)?.phases ?? [], items: inputItems(context) }),
                onDone: [
                  { guard: ({ event }) => blockOf(event.output) !== undefined, target: '#session.blocked', actions: [{ type: 'recordBlock', params: ({ event }) => event.output }, 'dropHeldResponse'] },
                  { guard: ({ event }) => event.output.items.some((item) => item.rewritten), target: '#session.preparing', actions: [{ type: 'applyInputCheck', params: ({ event }) => event.output }, 'askAgain'] },
                  { target: 'passed', actions: { type: 'applyInputCheck', params: ({ event }) => event.output } },
                ],
                onError: {
                  target: '#session.failed',
                  actions: { type: 'recordFailure', params: ({ event }) => ({ stopReason: 'the input guardrails failed', error: errorMessage(event.error) }) },
                },
              },
            },
            passed: { type: 'final' },
          },
        },
      },
      onDone: { target: 'validating', actions: 'recordHeldModelResponse' },
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
            // The workflow decides where an answer may end the work: elsewhere the model is told to move on first.
            { guard: and(['isFinalAnswer', 'answerOutsideItsPhase']), target: '#session.repairing', actions: 'refuseAnswerInPhase' },
            { guard: and(['isFinalAnswer', 'outputAwaitsCheck']), target: '#session.checking_output' },
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
          always: [{ guard: 'toolInputAwaitsCheck', target: 'checking_tool_input' }, ...toDispatch],
        },
        // A call's arguments, validated, before a person approves them or a worker runs them.
        checking_tool_input: guardrailCheck('toolInput', toolInputItems, { then: '#session.validating.checked', apply: 'applyToolInputCheck' }),
        checked: { always: toDispatch },
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
        'session.redirect': { target: 'preparing', actions: { type: 'keepInstruction', params: ({ event }) => ({ instruction: event.instruction, by: event.by }) } },
        'session.continue': { target: 'preparing', actions: { type: 'recordIntervention', params: ({ event }) => ({ kind: 'continued' as const, ...(event.by ? { by: event.by } : {}) }) } },
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
      always: [
        { guard: and(['allToolCallsAnswered', 'toolOutputAwaitsCheck']), target: 'checking_tool_output' },
        { guard: 'allToolCallsAnswered', target: 'observing' },
      ],
    },
    // Results, before the model reads them.
    checking_tool_output: guardrailCheck('toolOutput', toolOutputItems, { then: '#session.observing', apply: 'applyToolOutputCheck' }),
    // An exit of the workflow the model chose that a person must approve first (see phaseSteps.ts).
    awaiting_phase_approval: {
      on: {
        'session.approve': { actions: { type: 'decidePhaseExit', params: ({ event }) => ({ approved: true, by: event.by }) } },
        'session.deny': { actions: { type: 'decidePhaseExit', params: ({ event }) => ({ approved: false, by: event.by, reason: event.reason }) } },
        'session.approval_expired': { actions: { type: 'decidePhaseExit', params: { approved: false, by: 'troupe', expired: true } } },
        'session.approval_deadline': { actions: { type: 'setApprovalDeadline', params: ({ event }) => event.at } },
      },
      always: { guard: not('awaitsPhaseApproval'), target: 'preparing' },
    },
    observing: {
      entry: ['recordToolResults', 'advancePhase'],
      always: [
        { guard: 'aCallIsInDoubt', target: 'escalated', actions: 'escalateInDoubt' },
        { guard: 'awaitsPhaseApproval', target: 'awaiting_phase_approval' },
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
    // The final answer, before it is returned.
    checking_output: guardrailCheck('output', outputItems, { then: '#session.completed', apply: 'applyOutputCheck', andThen: 'recordAnswer' }),
    completed: { type: 'final' },
    // A guardrail tripped on what came in or what would have gone out (see guardrailSteps.ts).
    blocked: { type: 'final' },
    budget_exhausted: { type: 'final' },
    // Parked, not final: the session waits for a person, whose answer resumes the loop.
    escalated: {
      on: {
        'session.answer': {
          target: 'preparing',
          actions: [
            { type: 'recordHumanAnswer', params: ({ event }) => event.answer },
            { type: 'recordIntervention', params: ({ event }) => ({ kind: 'answered' as const, detail: event.answer, ...(event.by ? { by: event.by } : {}) }) },
          ],
        },
        'session.escalate': {},
        'session.rollback': { target: 'rolling_back' },
        'session.takeover': { target: 'manual', actions: { type: 'startTakeover', params: ({ event }) => event.by } },
      },
    },
    // Taken over by a person (see manualState.ts).
    manual: manualState,
    failed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;

