import { assign, fromPromise, setup } from 'xstate';
import type { ToolFailure } from '../tools/toolFailure.ts';
import { addSpending, type DelegatedSpending } from './delegation.ts';
import { backoffDelayMs } from './retryPolicy.ts';
import type { PlannedToolCall, ToolCallAttempt, ToolCallOutcome } from './toolCallOutcome.ts';

export interface ToolCallInput {
  sessionId: string;
  turn: number;
  call: PlannedToolCall;
}

export interface SendToolRequestInput {
  sessionId: string;
  turn: number;
  call: PlannedToolCall;
  /** The tool this attempt goes to: the call's own, or one of its fallbacks. */
  tool: string;
  attempt: number;
}

export interface ToolCallContext extends ToolCallInput {
  /** Attempts made on the current tool (the primary or a fallback). */
  attempt: number;
  /** All attempts on all tools. */
  totalAttempts: number;
  tool: string;
  /** Index into `call.fallbacks` of the tool in use; -1 for the call's own tool. */
  fallbackIndex: number;
  elapsedMs: number;
  lastFailure: ToolFailure | null;
  /** What specialists spent over the attempts so far (delegations only). */
  spent: DelegatedSpending | null;
  outcome: ToolCallOutcome | null;
}

/**
 * One tool call, through retries and fallbacks:
 * attempting → (retryable failure, attempts left) backing_off → attempting …
 *            → (unavailable, a fallback left) attempting the fallback
 *            → succeeded | failed.
 * Pure: the request itself is the `sendToolRequest` actor, the backoff (with jitter) the
 * `retryBackoff` delay, and the announcements are actions; the host provides all three.
 */
export const toolCallMachine = setup({
  types: {
    input: {} as ToolCallInput,
    context: {} as ToolCallContext,
    output: {} as ToolCallOutcome,
  },
  actors: {
    sendToolRequest: fromPromise<ToolCallAttempt, SendToolRequestInput>(async () => {
      throw new Error('The tool-call actor "sendToolRequest" was not provided: use toolCallMachine.provide({ actors: { sendToolRequest } }).');
    }),
  },
  delays: {
    retryBackoff: ({ context }) => backoffDelayMs(context.call.retry, context.attempt),
  },
  guards: {
    succeeded: (_, attempt: ToolCallAttempt) => attempt.status === 'ok',
    canRetry: ({ context }, attempt: ToolCallAttempt) =>
      attempt.status === 'error' && attempt.failure.retryable && context.attempt < context.call.retry.maxAttempts,
    canFallBack: ({ context }, attempt: ToolCallAttempt) =>
      attempt.status === 'error' && attempt.failure.code === 'UNAVAILABLE' && context.fallbackIndex + 1 < context.call.fallbacks.length,
  },
  actions: {
    // Announcements: the host publishes events, span events and log lines; by default nothing.
    announceStart: () => {},
    announceRetry: () => {},
    announceFallback: () => {},
    announceFinish: () => {},
    recordAttempt: assign(({ context }, attempt: ToolCallAttempt) => ({
      elapsedMs: context.elapsedMs + attempt.durationMs,
      totalAttempts: context.totalAttempts + 1,
      lastFailure: attempt.status === 'error' ? attempt.failure : null,
      spent: attempt.spent ? (context.spent ? addSpending(context.spent, attempt.spent) : attempt.spent) : context.spent,
    })),
    nextAttempt: assign({ attempt: ({ context }) => context.attempt + 1 }),
    switchToFallback: assign(({ context }) => {
      const fallbackIndex = context.fallbackIndex + 1;
      return { fallbackIndex, tool: context.call.fallbacks[fallbackIndex] ?? context.tool, attempt: 1 };
    }),
    recordSuccess: assign(({ context }, attempt: ToolCallAttempt) => ({
      outcome: {
        status: 'ok' as const, callId: context.call.callId, result: attempt.status === 'ok' ? attempt.result : null,
        durationMs: context.elapsedMs, attempts: context.totalAttempts, servedBy: context.tool,
        ...(attempt.status === 'ok' && attempt.compensation !== undefined ? { compensation: attempt.compensation } : {}),
        ...(context.spent ? { spent: context.spent } : {}),
      },
    })),
    recordFailure: assign(({ context }) => ({
      outcome: {
        status: 'error' as const, callId: context.call.callId, durationMs: context.elapsedMs, attempts: context.totalAttempts,
        failure: context.lastFailure ?? { code: 'INTERNAL' as const, message: 'The tool call failed without a reason.', retryable: false },
        ...(context.spent ? { spent: context.spent } : {}),
      },
    })),
  },
}).createMachine({
  id: 'toolCall',
  context: ({ input }) => ({
    ...input, attempt: 1, totalAttempts: 0, tool: input.call.name, fallbackIndex: -1, elapsedMs: 0, lastFailure: null, spent: null, outcome: null,
  }),
  entry: 'announceStart',
  initial: 'attempting',
  output: ({ context }) =>
    context.outcome ?? { status: 'error', callId: context.call.callId, durationMs: context.elapsedMs, failure: { code: 'INTERNAL', message: 'No outcome.', retryable: false } },
  states: {
    attempting: {
      invoke: {
        id: 'sendToolRequest',
        src: 'sendToolRequest',
        input: ({ context }) => ({ sessionId: context.sessionId, turn: context.turn, call: context.call, tool: context.tool, attempt: context.attempt }),
        onDone: [
          {
            guard: { type: 'succeeded', params: ({ event }) => event.output },
            target: 'succeeded',
            actions: [{ type: 'recordAttempt', params: ({ event }) => event.output }, { type: 'recordSuccess', params: ({ event }) => event.output }],
          },
          {
            guard: { type: 'canRetry', params: ({ event }) => event.output },
            target: 'backing_off',
            actions: [{ type: 'recordAttempt', params: ({ event }) => event.output }, 'announceRetry'],
          },
          {
            guard: { type: 'canFallBack', params: ({ event }) => event.output },
            target: 'attempting',
            reenter: true,
            actions: [{ type: 'recordAttempt', params: ({ event }) => event.output }, 'switchToFallback', 'announceFallback'],
          },
          { target: 'failed', actions: [{ type: 'recordAttempt', params: ({ event }) => event.output }, 'recordFailure'] },
        ],
        onError: {
          target: 'failed',
          actions: [
            assign(({ context, event }) => ({
              totalAttempts: context.totalAttempts + 1,
              lastFailure: { code: 'INTERNAL' as const, message: `The tool call failed inside the orchestrator: ${String(event.error)}`, retryable: false },
            })),
            'recordFailure',
          ],
        },
      },
    },
    backing_off: {
      after: { retryBackoff: { target: 'attempting', actions: 'nextAttempt' } },
    },
    succeeded: { type: 'final', entry: 'announceFinish' },
    failed: { type: 'final', entry: 'announceFinish' },
  },
});

export type ToolCallMachine = typeof toolCallMachine;
