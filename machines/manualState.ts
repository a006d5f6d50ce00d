import type { SessionEvent } from './sessionProtocol.ts';
import type { PlannedToolCall } from './toolCallOutcome.ts';
import { sessionSetup } from './sessionSetup.ts';

/**
 * Taken over: the person calls tools through the session, each one triaged, run and recorded like
 * the model's, until they hand it back (`session.handback`, back to `preparing`).
 */
export const manualState = sessionSetup.createStateConfig({
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
});
