import { stateIdOfEvent } from '../../console/server/sessionViews.ts';
import type { StreamedEvent } from '../../console/app/src/sessionFeed.ts';
import { OwnSessionEvent, SessionEvent, type SessionEventBody } from '../../transport/messages.ts';

/**
 * Shared fixtures of the console page's unit tests: session events as the wire carries them, and
 * as the session stream hands them to the page (`{ event, stateId }`, the state the server reads
 * from each event). Every event is parsed with the wire's schema, so a fixture cannot drift from
 * the real shapes.
 */

type OwnSessionEventBody = Exclude<SessionEventBody, { type: 'specialist.event' }>;

const at = (seq: number) => new Date(Date.UTC(2025, 0, 15, 9, 30, seq)).toISOString();

/** Stamps bodies as a session's publisher does (`sessionId`, `seq` from `firstSeq`, `at`) and checks each against the wire's schema. */
export function stamped(sessionId: string, bodies: readonly SessionEventBody[], firstSeq = 0): SessionEvent[] {
  return bodies.map((body, index) => SessionEvent.parse({ ...body, sessionId, seq: firstSeq + index, at: at(firstSeq + index) }));
}

/** A specialist's own event as relayed inside a `specialist.event` (it keeps its own session id and seq). */
export function specialistsOwn(sessionId: string, seq: number, body: OwnSessionEventBody): OwnSessionEvent {
  return OwnSessionEvent.parse({ ...body, sessionId, seq, at: at(seq) });
}

/** Events as the session stream delivers them to the page, with the state the server says each marks. */
export function streamed(events: readonly SessionEvent[]): StreamedEvent[] {
  return events.map((event) => ({ event: event as unknown as Record<string, unknown>, stateId: stateIdOfEvent('session', event) }));
}

export const usage = (inputTokens: number, outputTokens: number, costUsd: number) => ({ inputTokens, outputTokens, costUsd });

const breakdown = { system: 120, tools: 300, task: 40, ledger: 0, summary: 0, history: 0, outputHeadroom: 1024, total: 460, limit: 127_000 };

/**
 * A coordinator that delegates research in turn 1 and answers in turn 2. The researcher
 * (depth 1) delegates in turn to an analyst (depth 2); both specialists' events are relayed into
 * the coordinator's stream, between the delegating call's start and finish, as the relay does.
 * Costs: the coordinator $0.002 + $0.004, the researcher $0.001, the analyst $0.0005.
 */
export function delegatingSession(): SessionEvent[] {
  const researcher = 'researcher-session';
  const analyst = 'analyst-session';
  return stamped('coordinator-session', [
    { type: 'session.started', agent: 'coordinator', model: 'gpt-4.1', task: 'Compare the two suppliers', traceId: 'a'.repeat(32) },
    { type: 'context.assembled', turn: 1, model: 'gpt-4.1', contextWindow: 128_000, tokenizer: 'o200k_base', breakdown },
    { type: 'turn.started', turn: 1 },
    { type: 'model.routed', turn: 1, model: 'gpt-4.1', rule: null, reason: 'the default model' },
    {
      type: 'model.responded', turn: 1, model: 'gpt-4.1', content: null, toolCalls: [{ id: 'call-research', name: 'ask_researcher', arguments: '{"question":"suppliers"}' }],
      finishReason: 'tool_calls', usage: usage(1000, 50, 0.002), totals: usage(1000, 50, 0.002), durationMs: 812,
    },
    { type: 'tool.call.started', turn: 1, callId: 'call-research', tool: 'ask_researcher', arguments: { question: 'suppliers' } },
    {
      type: 'specialist.event', agent: 'researcher', depth: 1, callId: 'call-research',
      event: specialistsOwn(researcher, 0, { type: 'session.started', agent: 'researcher', model: 'gpt-4.1-mini', task: 'suppliers', traceId: 'a'.repeat(32) }),
    },
    {
      type: 'specialist.event', agent: 'researcher', depth: 1, callId: 'call-research',
      event: specialistsOwn(researcher, 1, {
        type: 'model.responded', turn: 1, model: 'gpt-4.1-mini', content: null, toolCalls: [{ id: 'call-analyse', name: 'ask_analyst', arguments: '{}' }],
        finishReason: 'tool_calls', usage: usage(400, 20, 0.001), totals: usage(400, 20, 0.001), durationMs: 300,
      }),
    },
    {
      type: 'specialist.event', agent: 'researcher', depth: 1, callId: 'call-research',
      event: specialistsOwn(researcher, 2, { type: 'tool.call.started', turn: 1, callId: 'call-analyse', tool: 'ask_analyst', arguments: {} }),
    },
    {
      type: 'specialist.event', agent: 'analyst', depth: 2, callId: 'call-analyse',
      event: specialistsOwn(analyst, 0, {
        type: 'model.responded', turn: 1, model: 'gpt-4.1-mini', content: 'Supplier B', toolCalls: [],
        finishReason: 'stop', usage: usage(200, 10, 0.0005), totals: usage(200, 10, 0.0005), durationMs: 150,
      }),
    },
    {
      type: 'specialist.event', agent: 'analyst', depth: 2, callId: 'call-analyse',
      event: specialistsOwn(analyst, 1, {
        type: 'session.finished', status: 'completed', output: 'Supplier B', stopReason: 'answered', steps: 1, toolCalls: 0,
        usage: usage(200, 10, 0.0005), traceId: 'a'.repeat(32), durationMs: 160,
      }),
    },
    {
      type: 'specialist.event', agent: 'researcher', depth: 1, callId: 'call-research',
      event: specialistsOwn(researcher, 3, { type: 'tool.call.finished', turn: 1, callId: 'call-analyse', tool: 'ask_analyst', status: 'ok', result: 'Supplier B', durationMs: 170 }),
    },
    {
      type: 'specialist.event', agent: 'researcher', depth: 1, callId: 'call-research',
      event: specialistsOwn(researcher, 4, {
        type: 'session.finished', status: 'completed', output: 'B is cheaper', stopReason: 'answered', steps: 2, toolCalls: 1,
        usage: usage(600, 30, 0.0015), traceId: 'a'.repeat(32), durationMs: 500,
      }),
    },
    { type: 'tool.call.finished', turn: 1, callId: 'call-research', tool: 'ask_researcher', status: 'ok', result: 'B is cheaper', durationMs: 510 },
    { type: 'context.assembled', turn: 2, model: 'gpt-4.1', contextWindow: 128_000, tokenizer: 'o200k_base', breakdown },
    { type: 'turn.started', turn: 2 },
    {
      type: 'model.responded', turn: 2, model: 'gpt-4.1', content: 'Supplier B is cheaper.', toolCalls: [],
      finishReason: 'stop', usage: usage(1500, 40, 0.004), totals: usage(2500, 90, 0.006), durationMs: 640,
    },
    {
      type: 'session.finished', status: 'completed', output: 'Supplier B is cheaper.', stopReason: 'answered', steps: 2, toolCalls: 1,
      usage: usage(3100, 120, 0.0075), delegated: { usage: usage(600, 30, 0.0015), steps: 2, toolCalls: 1 }, traceId: 'a'.repeat(32), durationMs: 2100,
    },
  ]);
}
