import * as z from 'zod';
import { ToolFailureCode, toolFailure, type ToolFailure } from '../tools/toolFailure.ts';
import { BudgetName, type Budgets } from './budgets.ts';
import { wallClockDeadline, type SessionContext } from './sessionContext.ts';
import { addUsage, noUsage, Usage } from './usage.ts';

/** What a delegated specialist spent: returned with its answer (or its failure) and added to the delegating session's totals. */
export const DelegatedSpending = z.object({
  usage: Usage,
  steps: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
});
export type DelegatedSpending = z.infer<typeof DelegatedSpending>;

export const nothingDelegated: DelegatedSpending = { usage: noUsage, steps: 0, toolCalls: 0 };

export function addSpending(a: DelegatedSpending, b: DelegatedSpending): DelegatedSpending {
  return { usage: addUsage(a.usage, b.usage), steps: a.steps + b.steps, toolCalls: a.toolCalls + b.toolCalls };
}

/** The most a specialist may spend: what its delegating session has left, shared among the turn's delegations. */
export const DelegationLimits = z.object({
  maxSteps: z.number().int().nonnegative(),
  maxTotalTokens: z.number().int().nonnegative(),
  maxCostUsd: z.number().nonnegative(),
  /** Epoch milliseconds: the delegating session's wall-clock deadline. */
  deadline: z.number().int().positive(),
});
export type DelegationLimits = z.infer<typeof DelegationLimits>;

/** What a call to a specialist carries besides its task. */
// Ids that become subject tokens and metric attributes arrive from the wire: checked as strictly as a start request's.
const sessionIdOnTheWire = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'session ids use letters, digits, "-" and "_" only (at most 128)');
const attributionOnTheWire = z.string().regex(/^[\w.@:-]{1,128}$/, 'letters, digits and . _ @ : - only (at most 128)');

export const Delegation = z.object({
  /** The specialist's session id, chosen by the delegating session so it can follow its events from the start. */
  sessionId: sessionIdOnTheWire,
  parentSessionId: sessionIdOnTheWire,
  /** The specialist session's depth: 1 under a top-level session. */
  depth: z.number().int().positive(),
  /** How many levels further the specialist may delegate: 0 means it may not. */
  depthLeft: z.number().int().nonnegative(),
  limits: DelegationLimits,
  /** Whom the delegating session works for: the specialist's spend is attributed the same way. */
  tenant: attributionOnTheWire.optional(),
  user: attributionOnTheWire.optional(),
});
export type Delegation = z.infer<typeof Delegation>;

/** The steps a session has spent: its own model calls and those of its specialists. */
export const stepsSpent = (context: Pick<SessionContext, 'turn' | 'delegated'>): number => context.turn + context.delegated.steps;

/**
 * What the session has left for one of its `delegations` specialists running this turn: each gets
 * an equal share, so together they can never spend more than the session still may. Held back
 * first is what the session needs to read their answers: one more step, and a model call as large
 * as its last one.
 */
export function delegationLimits(context: SessionContext, delegations: number): DelegationLimits {
  const share = Math.max(1, delegations);
  const { budgets, usage } = context;
  const nextCall = context.lastResponse ? context.lastResponse.usage.inputTokens + context.lastResponse.usage.outputTokens : 0;
  const nextCost = context.lastResponse?.costUsd ?? 0;
  return {
    maxSteps: Math.max(0, Math.floor((budgets.maxSteps - stepsSpent(context) - 1) / share)),
    maxTotalTokens: Math.max(0, Math.floor((budgets.maxTotalTokens - usage.inputTokens - usage.outputTokens - nextCall) / share)),
    // Rounded down to a micro-dollar: shares multiplied back must never exceed what is left.
    maxCostUsd: Math.max(0, Math.floor(((budgets.maxCostUsd - usage.costUsd - nextCost) / share) * 1e6) / 1e6),
    deadline: wallClockDeadline(context),
  };
}

/**
 * A specialist's own budgets lowered to `limits` where they ask for more; `capped` names the ones
 * lowered, so a stop at a cap can say it was the parent's limit.
 */
export function capBudgets(own: Budgets, limits: DelegationLimits, now: number): { budgets: Budgets; capped: BudgetName[] } {
  const capped: BudgetName[] = [];
  const cap = (name: BudgetName, mine: number, limit: number) => {
    if (limit >= mine) return mine;
    capped.push(name);
    return limit;
  };
  return {
    budgets: {
      ...own,
      maxSteps: cap(BudgetName.maxSteps, own.maxSteps, limits.maxSteps),
      maxTotalTokens: cap(BudgetName.maxTotalTokens, own.maxTotalTokens, limits.maxTotalTokens),
      maxCostUsd: cap(BudgetName.maxCostUsd, own.maxCostUsd, limits.maxCostUsd),
      // A deadline already past means the delegating session was resumed by a person after it (its
      // wall clock stops while it waits for them): it bounds nothing any more.
      maxWallClockMs: limits.deadline > now ? cap(BudgetName.maxWallClockMs, own.maxWallClockMs, limits.deadline - now) : own.maxWallClockMs,
    },
    capped,
  };
}

const refuse = (code: ToolFailureCode, message: string) => ({ ok: false as const, failure: toolFailure(code, message) });

/**
 * The delegation a specialist may take a task under, or why it must not, as the failure its caller
 * gets. Without a delegation nothing says what the task may spend, so it is refused outright
 * (FORBIDDEN): a specialist works only for a delegating session, never on its own budget for
 * whoever reaches its subject. A delegation must also be the calling session's own (its
 * `parentSessionId` is the session the request comes from) and name a child that is not that
 * session. The wire schema has refused malformed ones already (a missing limit, a negative or
 * fractional count, a non-finite number), with INVALID_INPUT.
 */
export function acceptDelegation(
  delegation: Delegation | undefined, callerSessionId: string,
): { ok: true; delegation: Delegation } | { ok: false; failure: ToolFailure } {
  if (!delegation) {
    return refuse(
      ToolFailureCode.FORBIDDEN,
      'A specialist takes tasks only from a delegating session, and this call carries no delegation (the session it is for, its depth and the budget it may spend). No session was started. Delegate from a session, with its delegate_<agent> tool.',
    );
  }
  if (delegation.parentSessionId !== callerSessionId) {
    return refuse(ToolFailureCode.INVALID_INPUT, `The delegation is for session ${delegation.parentSessionId}, but the call comes from session ${callerSessionId}. No session was started.`);
  }
  if (delegation.sessionId === delegation.parentSessionId) {
    return refuse(ToolFailureCode.INVALID_INPUT, `The delegation names the delegating session ${delegation.sessionId} as its own child. No session was started.`);
  }
  return { ok: true, delegation };
}

/**
 * The budgets a specialist works a delegated task with: its own, lowered to the time the call
 * leaves (`answerBy`: the request's deadline, less what the answer needs to travel back) and then
 * by {@link capBudgets} to what the delegating session passed. Every path is capped by the parent:
 * steps, tokens and cost always by its limits, the wall clock by its deadline while that is ahead
 * and always by the request's. Undefined when the call leaves no time at all: the specialist must
 * refuse rather than start a session that could only overrun.
 */
export function delegatedBudgets(own: Budgets, limits: DelegationLimits, answerBy: number, now: number): { budgets: Budgets; capped: BudgetName[] } | undefined {
  const timeLeft = answerBy - now;
  if (!(timeLeft > 0)) return undefined;
  return capBudgets({ ...own, maxWallClockMs: Math.min(own.maxWallClockMs, timeLeft) }, limits, now);
}

// Models choose call ids (`call_1`), so a child's id must include its parent's, or two sessions
// delegating with the same call id would share one child session, its events and its results.
// Ids are subject tokens of at most 128 characters: a pair too long for that is hashed instead
// (FNV-1a, 64 bits, twice seeded: unique enough among the sessions one deployment runs at once).
export function childSessionId(parentSessionId: string, callId: string): string {
  const readable = `${parentSessionId}-d-${callId}`;
  if (readable.length <= 128) return readable;
  const fnv = (seed: bigint) => {
    let hash = seed;
    for (const char of `${parentSessionId}\u0000${callId}`) hash = BigInt.asUintN(64, (hash ^ BigInt(char.codePointAt(0) ?? 0)) * 0x100000001b3n);
    return hash.toString(16).padStart(16, '0');
  };
  return `d-${fnv(0xcbf29ce484222325n)}${fnv(0x84222325cbf29ce4n)}`;
}

/**
 * What a call to a specialist carries: a session id for it, its depth, and its share of what this
 * session has left (the turn's delegations split it equally).
 */
export function delegationFor(context: SessionContext, callId: string, isDelegation: (tool: string) => boolean): Delegation {
  const delegations = context.accepted.filter((call) => isDelegation(call.name)).length;
  return {
    ...(context.tenant ? { tenant: context.tenant } : {}),
    ...(context.user ? { user: context.user } : {}),
    sessionId: childSessionId(context.sessionId, callId),
    parentSessionId: context.sessionId,
    depth: context.depth + 1,
    depthLeft: Math.max(0, context.delegationDepthLeft - 1),
    limits: delegationLimits(context, delegations),
  };
}
