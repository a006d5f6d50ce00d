import * as z from 'zod';
import { BudgetOverrides } from '../machines/budgets.ts';
import { DelegatedSpending, Delegation } from '../machines/delegation.ts';
import { deadlineWithinTimerRange, maxTimerDelayMs } from '../machines/timerDelay.ts';
import { ToolFailure } from '../tools/toolFailure.ts';
import { subjectTokenPattern } from './subjects.ts';

/**
 * Every message Troupe puts on the wire. Each has a literal `type`; both sides decode with
 * `decodeWireMessage`, and the TypeScript types are inferred from these schemas.
 */

/** A tenant or user id as callers pass it: it becomes a metric attribute, so it stays short and printable. */
const Attribution = z.string().regex(/^[\w.@:-]{1,128}$/, 'letters, digits and . _ @ : - only (at most 128)');

const SessionId = z.string().regex(subjectTokenPattern, 'session ids use letters, digits, "-" and "_" only (at most 128)');

/**
 * Epoch milliseconds, seen from the receiver's clock no further away than a timer can wait: the
 * receiver arms timers with it, and a longer one would fire at once, abandoning the call as soon
 * as it began. Read against the clock when decoded, so such a message is refused with this issue.
 */
const Deadline = z.number().int().positive().refine((deadline) => deadlineWithinTimerRange(deadline, Date.now()), {
  message: `must be at most ${maxTimerDelayMs} ms from now (about 24.8 days, the longest delay a timer can wait)`,
});

// ── Tool calls: orchestrator ⇄ worker pool ─────────────────────────────────────────────────────
/**
 * An orchestrator's signature on a tool call it approved or on an undo it asks for
 * (`transport/callGrants.ts` says what is signed): the worker checks it against the orchestrator
 * keys it trusts, so no other peer on the bus can approve a call or undo one.
 */
export const CallGrant = z.object({
  /** The signing orchestrator's nkey public key. */
  signer: z.string().min(1),
  /** Epoch milliseconds after which the worker refuses the grant. */
  expiresAt: z.number().int().positive(),
  /** The ed25519 signature, base64url. */
  signature: z.string().min(1),
});
export type CallGrant = z.infer<typeof CallGrant>;

export const ToolRequest = z.object({
  type: z.literal('tool.request'),
  sessionId: SessionId,
  /** The idempotency key: the same for every attempt of one call. */
  callId: z.string().min(1),
  tool: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()),
  /** Epoch milliseconds; the worker abandons the call after it. */
  deadline: Deadline,
  /**
   * Who approved the call, for calls that need approval; the worker refuses such a call without it,
   * and, when it trusts orchestrator keys, without a valid `grant` from one of them.
   */
  approval: z.object({ by: z.string(), at: z.string(), grant: CallGrant.optional() }).optional(),
  /** Set on calls to a specialist: its session id, depth and the budget it may spend at most. */
  delegation: Delegation.optional(),
  /** Where the worker may report the call's progress ({@link ToolProgress}): the caller's progress subject. */
  progressTo: z.string().min(1).optional(),
});
export type ToolRequest = z.infer<typeof ToolRequest>;

/** How far a call has got, from the worker running it (an MCP server's progress notifications, say). */
export const ToolProgress = z.object({
  type: z.literal('tool.progress'),
  callId: z.string().min(1),
  /** Grows with each report; with `total`, out of it. */
  progress: z.number().finite(),
  total: z.number().finite().positive().optional(),
  message: z.string().max(1_000).optional(),
});
export type ToolProgress = z.infer<typeof ToolProgress>;

export const ToolReply = z.discriminatedUnion('status', [
  z.object({
    type: z.literal('tool.reply'), status: z.literal('ok'), callId: z.string(), result: z.unknown(),
    /** What undoing the call needs, for tools with a compensation; kept in the session's ledger. */
    compensation: z.unknown().optional(),
    /** What a specialist spent on the call, for the delegating session's totals. */
    spent: DelegatedSpending.optional(),
  }),
  z.object({ type: z.literal('tool.reply'), status: z.literal('error'), callId: z.string(), failure: ToolFailure, spent: DelegatedSpending.optional() }),
]);
export type ToolReply = z.infer<typeof ToolReply>;

/** Undo one executed call (a rollback), with what its compensation captured. */
export const ToolUndoRequest = z.object({
  type: z.literal('tool.undo'),
  sessionId: z.string(),
  callId: z.string(),
  tool: z.string(),
  compensation: z.unknown(),
  deadline: Deadline,
  /** Who asked for the rollback. */
  by: z.string().optional(),
  /** The orchestrator's signature on the undo; required by workers that trust orchestrator keys. */
  grant: CallGrant.optional(),
});
export type ToolUndoRequest = z.infer<typeof ToolUndoRequest>;

export const ToolCallCancellation = z.object({
  type: z.literal('tool.cancel'),
  callIds: z.array(z.string()).min(1),
  reason: z.string(),
});
export type ToolCallCancellation = z.infer<typeof ToolCallCancellation>;

export const PoolAnnouncement = z.object({
  type: z.literal('pool.started'),
  domain: z.string(),
  instanceId: z.string(),
  tools: z.array(z.string()),
});
export type PoolAnnouncement = z.infer<typeof PoolAnnouncement>;

// ── Sessions: client ⇄ orchestrator ────────────────────────────────────────────────────────────
export const SessionStartRequest = z.object({
  type: z.literal('session.start'),
  sessionId: SessionId,
  task: z.string().trim().min(1, 'the task is empty'),
  /** Which agent runs the session; the orchestrator's default when absent. */
  agent: z.string().optional(),
  /** Who the work is for: spend is reported (metrics, alerts) per tenant and per user when given. */
  tenant: Attribution.optional(),
  user: Attribution.optional(),
  /**
   * Budgets tighter than the agent's own, for this session only; the agent's where absent. A value
   * above the agent's is refused (`invalid`): a client may only tighten. Kept in the session's
   * checkpoint, so a resumed session runs with them too.
   */
  budgets: BudgetOverrides.optional(),
});
export type SessionStartRequest = z.infer<typeof SessionStartRequest>;

/**
 * Why a start was refused, for code to act on: `in_use` (the session exists: attach to it), `starting`
 * (another orchestrator holds the id but has not accepted it: send the same start again after a lease),
 * `not_stored` (its first checkpoint could not be stored), `invalid` (the request, its agent, or budgets above the agent's).
 */
export const StartRefusal = z.enum(['invalid', 'in_use', 'starting', 'not_stored', 'unavailable']);
export type StartRefusal = z.infer<typeof StartRefusal>;

export const SessionStartReply = z.discriminatedUnion('type', [
  z.object({ type: z.literal('session.accepted'), sessionId: z.string(), traceId: z.string() }),
  // `code` is optional on the wire: orchestrators older than it send only the reason.
  z.object({ type: z.literal('session.rejected'), sessionId: z.string().nullable(), reason: z.string(), code: StartRefusal.optional() }),
]);
export type SessionStartReply = z.infer<typeof SessionStartReply>;

const person = z.string().trim().min(1).default('a person');
// Who sent a command that did not always say (older senders): recorded when given.
const someone = z.string().trim().min(1).max(200).optional();
export const SessionControl = z.discriminatedUnion('type', [
  z.object({ type: z.literal('session.cancel'), reason: z.string().default('cancelled by the client'), by: someone }),
  /** A person's answer to an escalated session; it resumes the loop. */
  z.object({ type: z.literal('session.answer'), answer: z.string().trim().min(1, 'the answer is empty'), by: someone }),
  /** Approve calls waiting for approval: the listed ones, or all. */
  z.object({ type: z.literal('session.approve'), by: person, callIds: z.array(z.string()).optional() }),
  z.object({ type: z.literal('session.deny'), by: person, reason: z.string().trim().min(1).default('denied'), callIds: z.array(z.string()).optional() }),
  /** Pause at the next safe point (before the next model call). */
  z.object({ type: z.literal('session.interrupt'), by: someone }),
  /** A new instruction for the model; also resumes an interrupted session. */
  z.object({ type: z.literal('session.redirect'), instruction: z.string().trim().min(1, 'the instruction is empty'), by: someone }),
  /** Resume an interrupted session as it was. */
  z.object({ type: z.literal('session.continue'), by: someone }),
  /** Undo the executed calls after `toTurn` (the session must be parked with a person). */
  z.object({ type: z.literal('session.rollback'), toTurn: z.number().int().nonnegative(), by: person }),
  /** Take an escalated session over: the person calls tools through it until they hand it back. */
  z.object({ type: z.literal('session.takeover'), by: person }),
  /** A call by the person in control; validated, run and recorded like the model's. */
  z.object({ type: z.literal('session.manual_call'), tool: z.string().min(1), arguments: z.record(z.string(), z.unknown()) }),
  z.object({ type: z.literal('session.handback'), instruction: z.string().trim().min(1).optional() }),
]);
export type SessionControl = z.infer<typeof SessionControl>;

export const SessionControlReply = z.object({ type: z.literal('session.control.ack'), accepted: z.boolean(), reason: z.string().optional() });
export type SessionControlReply = z.infer<typeof SessionControlReply>;

// ── Session events: orchestrator → anyone watching (sessionEventMessages.ts) ───────────────────
export { decodeSessionEvents, OwnSessionEvent, SessionEvent, type DecodedSessionEvents, type SessionEventBody, type SessionEventType, type SessionFinished } from './sessionEventMessages.ts';

// ── Alerts: any process → operators ───────────────────────────────────────────────────────────
/**
 * Thresholds crossed (error rates, spend), and `tool_conflict`: discovery kept a pool member from
 * serving a tool (another domain's, another definition than the one in use), raised whatever the thresholds.
 */
export const AlertKind = z.enum(['tool_error_rate', 'pool_error_rate', 'session_spend', 'tenant_spend', 'tool_conflict']);
export type AlertKind = z.infer<typeof AlertKind>;

/** A threshold crossed, published on `<namespace>.alerts.<kind>` (and logged, and counted in `troupe.alerts`). */
export const Alert = z.object({
  type: z.literal('alert.raised'),
  kind: AlertKind,
  /** What crossed it: the tool, the pool, the session id or the tenant. */
  subject: z.string(),
  /** The measured value: an error rate (0 to 1), USD, or for `tool_conflict` 1 (one pool member refused, threshold 0). */
  value: z.number(),
  threshold: z.number(),
  /** The sliding window the value was measured over, for rates and tenant spend. */
  windowMs: z.number().int().positive().optional(),
  /** For people: what happened, in a sentence. */
  detail: z.string(),
  at: z.string(),
  /** The process that raised it (`troupe-orchestrator`, `troupe-specialist-analyst`, …). */
  source: z.string(),
});
export type Alert = z.infer<typeof Alert>;
/** An alert as the monitor builds it; the publisher adds `source`. */
export type AlertBody = Omit<Alert, 'source'>;

