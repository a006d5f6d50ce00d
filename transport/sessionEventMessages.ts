import * as z from 'zod';
import { formatIssuePath } from '../tools/validation.ts';
import { BudgetNameSchema } from '../machines/budgets.ts';
import { CircuitState } from '../machines/circuitBreaker.ts';
import { DelegatedSpending } from '../machines/delegation.ts';
import { ContextBreakdown, ContextRemoval } from '../machines/contextAssembly.ts';
import { RoutingDecision } from '../machines/modelRouting.ts';
import { RollbackReport } from '../machines/rollback.ts';
import { ModelToolCall } from '../machines/conversation.ts';
import { CacheUse, SessionStatusSchema } from '../machines/sessionOutcome.ts';
import { Usage } from '../machines/usage.ts';
import { PhaseMove } from '../machines/workflowSteps.ts';
import { GuardrailDecision } from '../guardrails/defineGuardrail.ts';
import { ToolFailure } from '../tools/toolFailure.ts';

/**
 * A session's events, as its host publishes them on `<namespace>.sessions.<id>.events` for anyone
 * watching (clients, the CLI, specialists' parents). Part of the wire's messages: import them from
 * `messages.ts`, which re-exports them.
 */
const eventBase = { sessionId: z.string(), seq: z.number().int().nonnegative(), at: z.string() };

const ownSessionEvents = [
  z.object({
    ...eventBase, type: z.literal('session.started'), agent: z.string(), model: z.string(), task: z.string(), traceId: z.string(),
    tenant: z.string().optional(), user: z.string().optional(),
    /** With a workflow: the phases the session starts in, outermost first. */
    phases: z.array(z.string()).optional(),
  }),
  z.object({ ...eventBase, type: z.literal('turn.started'), turn: z.number().int().positive() }),
  /**
   * A guardrail's decision: pass, block or rewrite, with why it blocked or what a rewrite changed
   * (kinds and counts, never the content). At tool points, the call it was about.
   */
  z.object({
    ...eventBase, type: z.literal('guardrail.decided'), turn: z.number().int().nonnegative(), ...GuardrailDecision.shape,
    tool: z.string().optional(), callId: z.string().optional(),
  }),
  /** The session moved between phases of its agent's workflow: from where, to where, and what moved it. */
  z.object({ ...eventBase, type: z.literal('workflow.transitioned'), ...PhaseMove.shape }),
  z.object({
    ...eventBase,
    type: z.literal('approval.requested'),
    turn: z.number().int().positive(),
    /** The exact calls waiting, with their arguments. */
    calls: z.array(z.object({ callId: z.string(), tool: z.string(), arguments: z.record(z.string(), z.unknown()) })),
    /** When what is still undecided is denied. */
    expiresAt: z.string(),
  }),
  z.object({
    ...eventBase,
    type: z.literal('approval.decided'),
    decision: z.enum(['approved', 'denied', 'expired']),
    by: z.string(),
    callIds: z.array(z.string()).optional(),
    reason: z.string().optional(),
  }),
  /** A recorded command came to the session's host: applied, or refused with why. Each command id once. */
  z.object({
    ...eventBase,
    type: z.literal('control.applied'),
    controlId: z.string(),
    control: z.string(),
    accepted: z.boolean(),
    reason: z.string().optional(),
  }),
  z.object({ ...eventBase, type: z.literal('session.interrupted'), turn: z.number().int().nonnegative() }),
  z.object({ ...eventBase, type: z.literal('session.rolled_back'), ...RollbackReport.shape }),
  z.object({ ...eventBase, type: z.literal('session.redirected'), instruction: z.string(), by: z.string().optional() }),
  z.object({ ...eventBase, type: z.literal('session.taken_over'), by: z.string() }),
  z.object({ ...eventBase, type: z.literal('session.handed_back'), by: z.string(), instruction: z.string().optional() }),
  z.object({
    ...eventBase,
    type: z.literal('session.resumed'),
    /** The orchestrator that took the session over. */
    owner: z.string(),
    /** The state the checkpoint was in: the session continues from there. */
    state: z.string(),
    /** Tool calls that were in flight, re-sent with the same call ids (a side effect never repeats). */
    resentToolCalls: z.array(z.object({ callId: z.string(), tool: z.string() })),
  }),
  z.object({
    ...eventBase,
    type: z.literal('model.responded'),
    turn: z.number().int().positive(),
    model: z.string(),
    content: z.string().nullable(),
    toolCalls: z.array(ModelToolCall),
    finishReason: z.string().nullable(),
    usage: Usage,
    /** The session's totals after this call. */
    totals: Usage,
    durationMs: z.number().nonnegative(),
    /** Answered from the cache: `usage` is zero, and `savedUsd` what it cost when first asked for. */
    cached: z.boolean().optional(),
    savedUsd: z.number().nonnegative().optional(),
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.call.rejected'),
    turn: z.number().int().positive(),
    toolCallId: z.string(),
    tool: z.string(),
    failure: ToolFailure,
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.call.started'),
    turn: z.number().int().positive(),
    callId: z.string(),
    tool: z.string(),
    arguments: z.record(z.string(), z.unknown()),
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.call.finished'),
    turn: z.number().int().positive(),
    callId: z.string(),
    tool: z.string(),
    status: z.enum(['ok', 'error']),
    result: z.unknown().optional(),
    failure: ToolFailure.optional(),
    durationMs: z.number().nonnegative(),
    /** Attempts made, over every tool tried. */
    attempts: z.number().int().positive().optional(),
    /** The tool that answered: the call's own or a fallback. */
    servedBy: z.string().optional(),
    /** The result was too large: `result` is the summary the model got; the full one is in the result store. */
    summarised: z.boolean().optional(),
    /** Answered from the cache: the tool did not run. */
    cached: z.boolean().optional(),
  }),
  z.object({
    ...eventBase,
    type: z.literal('model.retrying'),
    turn: z.number().int().positive(),
    model: z.string(),
    /** The attempt about to be made on this model. */
    attempt: z.number().int().positive(),
    delayMs: z.number().nonnegative(),
    error: z.string(),
    /** Whether the delay came from the endpoint's Retry-After. */
    retryAfter: z.boolean(),
  }),
  z.object({ ...eventBase, type: z.literal('model.fallback'), turn: z.number().int().positive(), from: z.string(), to: z.string(), error: z.string() }),
  z.object({
    ...eventBase,
    type: z.literal('session.repair'),
    turn: z.number().int().positive(),
    reason: z.string(),
    /** Turns in a row that needed repair, this one included. */
    consecutive: z.number().int().positive(),
  }),
  z.object({ ...eventBase, type: z.literal('session.model_switched'), turn: z.number().int().positive(), from: z.string(), to: z.string(), reason: z.string() }),
  z.object({
    ...eventBase,
    type: z.literal('loop.detected'),
    turn: z.number().int().positive(),
    action: z.enum(['refocus', 'escalate']),
    description: z.string(),
    evidence: z.unknown(),
  }),
  /** A side-effecting call ended in doubt: its worker died after starting it, before recording what happened. */
  z.object({
    ...eventBase,
    type: z.literal('tool.call.in_doubt'),
    turn: z.number().int().positive(),
    callId: z.string(),
    tool: z.string(),
    arguments: z.record(z.string(), z.unknown()),
    /** Which worker held the call, when it started, when its claim expired, its fencing token, why it is unsettled. */
    evidence: z.record(z.string(), z.unknown()),
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.call.progress'),
    turn: z.number().int().positive(),
    callId: z.string(),
    tool: z.string(),
    progress: z.number(),
    total: z.number().optional(),
    message: z.string().optional(),
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.call.retrying'),
    turn: z.number().int().positive(),
    callId: z.string(),
    tool: z.string(),
    /** The attempt that is about to be made. */
    attempt: z.number().int().positive(),
    delayMs: z.number().nonnegative(),
    failure: ToolFailure,
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.call.fallback'),
    turn: z.number().int().positive(),
    callId: z.string(),
    from: z.string(),
    to: z.string(),
    failure: ToolFailure,
  }),
  z.object({
    ...eventBase,
    type: z.literal('tool.breaker.changed'),
    tool: z.string(),
    from: CircuitState,
    to: CircuitState,
  }),
  z.object({
    ...eventBase,
    type: z.literal('session.finished'),
    status: SessionStatusSchema,
    output: z.string().nullable(),
    stopReason: z.string(),
    budget: BudgetNameSchema.optional(),
    error: z.string().optional(),
    steps: z.number().int().nonnegative(),
    toolCalls: z.number().int().nonnegative(),
    usage: Usage,
    /** The specialists' share of steps, tool calls and usage (already included in the totals). */
    delegated: DelegatedSpending.optional(),
    /** Answers taken from the cache, when any were. */
    cache: CacheUse.optional(),
    traceId: z.string(),
    durationMs: z.number().nonnegative(),
  }),
  z.object({ ...eventBase, type: z.literal('model.routed'), ...RoutingDecision.shape }),
  /** The request of a model call as assembled: where its tokens went, within which window. */
  z.object({
    ...eventBase, type: z.literal('context.assembled'), turn: z.number().int().positive(), model: z.string(),
    contextWindow: z.number().int().positive(), tokenizer: z.string(), breakdown: ContextBreakdown,
  }),
  /** What compression removed to keep the request within budget. */
  z.object({ ...eventBase, type: z.literal('context.compressed'), turn: z.number().int().positive(), removed: z.array(ContextRemoval) }),
] as const;

/** An event of a session itself, as opposed to one relayed from a specialist it delegated to. */
export const OwnSessionEvent = z.discriminatedUnion('type', [...ownSessionEvents]);
export type OwnSessionEvent = z.infer<typeof OwnSessionEvent>;

export const SessionEvent = z.discriminatedUnion('type', [
  ...ownSessionEvents,
  /**
   * An event of a specialist's session, relayed into the stream of the session that delegated to
   * it (at any depth), so one stream shows the whole tree of work as it happens.
   */
  z.object({
    ...eventBase,
    type: z.literal('specialist.event'),
    agent: z.string(),
    /** 1 for a specialist of the top-level session, 2 for one of its specialists, … */
    depth: z.number().int().positive(),
    /** The delegating tool call, in the session one level up. */
    callId: z.string(),
    event: OwnSessionEvent,
  }),
]);
export type SessionEvent = z.infer<typeof SessionEvent>;
export type SessionEventType = SessionEvent['type'];
export type SessionFinished = Extract<SessionEvent, { type: 'session.finished' }>;

/** An event as its producer builds it; the publisher stamps `sessionId`, `seq` and `at`. */
export type SessionEventBody = SessionEvent extends infer E ? (E extends SessionEvent ? Omit<E, 'sessionId' | 'seq' | 'at'> : never) : never;

/** What one message on a session's events subject carried: its valid events in order, and why any others were refused. */
export interface DecodedSessionEvents {
  events: SessionEvent[];
  errors: string[];
}

/**
 * Decodes one message of a session's events subject: a single event, or an array of events a host
 * published together (the events of one moment of the session, in order). Never throws; each event
 * is checked on its own, so one malformed event in a batch costs that event only.
 */
export function decodeSessionEvents(data: Uint8Array, what: string): DecodedSessionEvents {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch (error) {
    return { events: [], errors: [`${what} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`] };
  }
  const decoded: DecodedSessionEvents = { events: [], errors: [] };
  const items = Array.isArray(json) ? json : [json];
  for (const [index, item] of items.entries()) {
    const parsed = SessionEvent.safeParse(item);
    if (parsed.success) decoded.events.push(parsed.data);
    else decoded.errors.push(`${what}${Array.isArray(json) ? ` (item ${index} of a batch)` : ''} is malformed: ${parsed.error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`).join('; ')}`);
  }
  return decoded;
}
