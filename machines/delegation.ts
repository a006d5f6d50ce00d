import * as z from 'zod';
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
export const Delegation = z.object({
  /** The specialist's session id, chosen by the delegating session so it can follow its events from the start. */
  sessionId: z.string(),
  parentSessionId: z.string(),
  /** The specialist session's depth: 1 under a top-level session. */
  depth: z.number().int().positive(),
  /** How many levels further the specialist may delegate: 0 means it may not. */
  depthLeft: z.number().int().nonnegative(),
  limits: DelegationLimits,
  /** Whom the delegating session works for: the specialist's spend is attributed the same way. */
  tenant: z.string().optional(),
  user: z.string().optional(),
});
export type Delegation = z.infer<typeof Delegation>;

/** The steps a session has spent: its own model calls and those of its specialists. */
export const stepsSpent = (context: Pick<SessionContext, 'turn' | 'delegated'>): number => context.turn + context.delegated.steps;

/**
 * What the session has left for one of its `delegations` specialists running this turn: each gets
 * an equal share, so together they can never spend more than the session still may.
 */
export function delegationLimits(context: SessionContext, delegations: number): DelegationLimits {
  const share = Math.max(1, delegations);
  const { budgets, usage } = context;
  return {
    maxSteps: Math.max(0, Math.floor((budgets.maxSteps - stepsSpent(context)) / share)),
    maxTotalTokens: Math.max(0, Math.floor((budgets.maxTotalTokens - usage.inputTokens - usage.outputTokens) / share)),
    // Rounded down to a micro-dollar: shares multiplied back must never exceed what is left.
    maxCostUsd: Math.max(0, Math.floor(((budgets.maxCostUsd - usage.costUsd) / share) * 1e6) / 1e6),
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
      maxWallClockMs: cap(BudgetName.maxWallClockMs, own.maxWallClockMs, Math.max(0, limits.deadline - now)),
    },
    capped,
  };
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
    sessionId: `delegation-${callId}`,
    parentSessionId: context.sessionId,
    depth: context.depth + 1,
    depthLeft: Math.max(0, context.delegationDepthLeft - 1),
    limits: delegationLimits(context, delegations),
  };
}
