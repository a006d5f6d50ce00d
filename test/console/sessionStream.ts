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

/**
 * The refund desk (agents/refundDesk.ts) from its start to the move to execute that waits for a
 * person, then, once approved, to its end: the loop's events with the workflow's moves among
 * them, in the order its host publishes them (a move made as a turn ends comes out once the next
 * turn's model call has begun: after its `context.assembled`, before its `turn.started`).
 * `untilWaiting` stops where the session parks.
 */
export function refundDeskSession(options: { untilWaiting?: boolean } = {}): SessionEvent[] {
  const reason = 'The proposal is in proposals/order-1002.md: refund 5900 cents for one broken speaker.';
  type Move = Extract<SessionEventBody, { type: 'workflow.transitioned' }>;
  const responded = (turn: number, name: string, args: Record<string, unknown>) => ({
    type: 'model.responded' as const, turn, model: 'scripted', content: null, toolCalls: [{ id: `call-${turn}`, name, arguments: JSON.stringify(args) }],
    finishReason: 'tool_calls', usage: usage(300, 20, 0.0001), totals: usage(300 * turn, 20 * turn, 0.0001 * turn), durationMs: 40,
  });
  const starting = (turn: number, move?: Omit<Move, 'type'>): SessionEventBody[] => [
    { type: 'context.assembled', turn, model: 'scripted', contextWindow: 128_000, tokenizer: 'o200k_base', breakdown },
    ...(move ? [{ type: 'workflow.transitioned' as const, ...move }] : []),
    { type: 'turn.started', turn },
  ];
  const choosing = (turn: number, to: string, why: string) => [responded(turn, 'next_phase', { to, reason: why })];
  const calling = (turn: number, tool: string, args: Record<string, unknown>, result: unknown): SessionEventBody[] => [
    responded(turn, tool, args),
    { type: 'tool.call.started', turn, callId: `call-${turn}`, tool, arguments: args },
    { type: 'tool.call.finished', turn, callId: `call-${turn}`, tool, status: 'ok', result, durationMs: 12 },
  ];
  const found = 'Order 1002 exists: Diego Lopez\'s, shipped.';
  const refundable = 'One portable speaker at 5900 cents is refundable.';
  const waiting: SessionEventBody[] = [
    { type: 'session.started', agent: 'refund_desk', model: 'scripted', task: 'Refund request from Diego Lopez for order 1002.', traceId: 'b'.repeat(32), phases: ['triage'] },
    ...starting(1), ...calling(1, 'db_query', { sql: 'SELECT 1002' }, [{ id: 1002 }]),
    ...starting(2), ...choosing(2, 'investigate', found),
    ...starting(3, { turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice', detail: found }), ...calling(3, 'calc_evaluate', { expression: '5900 * 1' }, 5900),
    ...starting(4), ...choosing(4, 'propose', refundable),
    ...starting(5, { turn: 4, from: ['investigate'], to: ['propose'], trigger: 'choice', detail: refundable }),
    ...calling(5, 'files_write', { path: 'proposals/order-1002.md', content: '…' }, { path: 'proposals/order-1002.md' }),
    ...starting(6), ...choosing(6, 'execute', reason),
    {
      type: 'approval.requested', turn: 6, expiresAt: '2025-01-15T09:45:00.000Z',
      calls: [{ callId: 'next_phase:execute', tool: 'next_phase', arguments: { to: 'execute', reason } }],
    },
  ];
  if (options.untilWaiting) return stamped('refund-session', waiting);
  return stamped('refund-session', [
    ...waiting,
    { type: 'approval.decided', decision: 'approved', by: 'ana (console)', callIds: ['next_phase:execute'] },
    ...starting(7, { turn: 6, from: ['propose'], to: ['execute'], trigger: 'approval', detail: reason, by: 'ana (console)' }),
    ...calling(7, 'refunds_issue', { orderId: 1002, amountCents: 5900 }, { refundId: 'rf_1' }),
    ...starting(8, { turn: 7, from: ['execute'], to: ['report'], trigger: 'tool', detail: 'refunds_issue' }),
    { type: 'model.responded', turn: 8, model: 'scripted', content: 'Dear Diego, we refunded 59.00.', toolCalls: [], finishReason: 'stop', usage: usage(300, 20, 0.0001), totals: usage(2400, 160, 0.0008), durationMs: 40 },
    {
      type: 'session.finished', status: 'completed', output: 'Dear Diego, we refunded 59.00.', stopReason: 'answered', steps: 8, toolCalls: 4,
      usage: usage(2400, 160, 0.0008), traceId: 'b'.repeat(32), durationMs: 3000,
    },
  ]);
}
