import * as z from 'zod';
import { TimerDelayMs } from './timerDelay.ts';

/** The limits one session may spend, configured per agent. */
export const Budgets = z.object({
  /** Model calls (turns) a session may make. */
  maxSteps: z.number().int().positive().default(20),
  /** Tool calls one model response may ask for. */
  maxToolCallsPerTurn: z.number().int().positive().default(8),
  /** Input plus output tokens over the whole session. */
  maxTotalTokens: z.number().int().positive().default(200_000),
  maxCostUsd: z.number().positive().default(1),
  /** The host arms a timer for it: bounded so that it cannot fire at once. */
  maxWallClockMs: TimerDelayMs.default(300_000),
});
export type Budgets = z.infer<typeof Budgets>;

/**
 * Some budgets to override, none filled in by default (unlike `Budgets.partial()`, which keeps the
 * defaults). Strict: a misspelt budget is refused rather than silently left at the agent's value.
 */
export const BudgetOverrides = z.strictObject({
  maxSteps: Budgets.shape.maxSteps.unwrap().optional(),
  maxToolCallsPerTurn: Budgets.shape.maxToolCallsPerTurn.unwrap().optional(),
  maxTotalTokens: Budgets.shape.maxTotalTokens.unwrap().optional(),
  maxCostUsd: Budgets.shape.maxCostUsd.unwrap().optional(),
  maxWallClockMs: Budgets.shape.maxWallClockMs.unwrap().optional(),
});
export type BudgetOverrides = z.infer<typeof BudgetOverrides>;
export type BudgetsInput = z.input<typeof Budgets>;

export const BudgetName = {
  maxSteps: 'maxSteps',
  maxToolCallsPerTurn: 'maxToolCallsPerTurn',
  maxTotalTokens: 'maxTotalTokens',
  maxCostUsd: 'maxCostUsd',
  maxWallClockMs: 'maxWallClockMs',
} as const;
export type BudgetName = (typeof BudgetName)[keyof typeof BudgetName];
export const BudgetNameSchema = z.enum(Object.values(BudgetName) as [BudgetName, ...BudgetName[]]);

/** A budget a session's start asked for above what its agent allows. */
export interface BudgetRaise {
  budget: BudgetName;
  asked: number;
  limit: number;
}

/**
 * The budgets a session runs with when its start asks for `overrides`: the agent's own, lowered
 * where asked. A value above the agent's is refused, and `raised` names every such budget: whoever
 * starts a session may be trusted less than whoever configured its agent, so it may only tighten.
 */
export function tightenBudgets(own: Budgets, overrides: BudgetOverrides): { ok: true; budgets: Budgets } | { ok: false; raised: BudgetRaise[] } {
  const budgets = { ...own };
  const raised: BudgetRaise[] = [];
  for (const budget of Object.values(BudgetName)) {
    const asked = overrides[budget];
    if (asked === undefined) continue;
    if (asked > own[budget]) raised.push({ budget, asked, limit: own[budget] });
    else budgets[budget] = asked;
  }
  return raised.length > 0 ? { ok: false, raised } : { ok: true, budgets };
}

/** What the session has spent against the budgets that are checked before each model call. */
export interface Spending {
  steps: number;
  totalTokens: number;
  costUsd: number;
}

/**
 * The first budget that leaves no room for another model call, or undefined. Wall-clock time and
 * tool calls per turn are checked where they happen (a timer; the model's response), not here.
 */
export function budgetExhaustedBeforeModelCall(spent: Spending, budgets: Budgets): BudgetName | undefined {
  if (spent.steps >= budgets.maxSteps) return BudgetName.maxSteps;
  if (spent.totalTokens >= budgets.maxTotalTokens) return BudgetName.maxTotalTokens;
  if (spent.costUsd >= budgets.maxCostUsd) return BudgetName.maxCostUsd;
  return undefined;
}
