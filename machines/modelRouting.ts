import * as z from 'zod';

/**
 * What kind of turn the model is about to take, as the session sees it: the first one (planning),
 * one after tool results, one after tool results that include failures, a repair of malformed
 * output, or one after a person spoke (an answer, a redirect, a hand-back).
 */
export const TurnKind = z.enum(['first', 'after_tools', 'after_tool_failure', 'repair', 'after_person']);
export type TurnKind = z.infer<typeof TurnKind>;

const fraction = z.number().min(0).max(1);
const noIssuesYet = (payload: { issues: unknown[] }) => payload.issues.length === 0;

/** One routing rule: every condition given must hold for its model to be chosen. */
export const RoutingRule = z.strictObject({
  /** Names the rule in events and spans; `rule <n>` when absent. */
  name: z.string().trim().min(1).optional(),
  model: z.string().min(1),
  when: z
    .strictObject({
      turnKinds: z.array(TurnKind).min(1).optional(),
      minTurn: z.number().int().positive().optional(),
      maxTurn: z.number().int().positive().optional(),
      /** Bounds on the tool calls the model made in the previous turn (how much is in play). */
      minToolCalls: z.number().int().nonnegative().optional(),
      maxToolCalls: z.number().int().nonnegative().optional(),
      /** Turns that went wrong so far (a failed or refused tool call, or a repaired output). */
      minFailures: z.number().int().nonnegative().optional(),
      /** Bounds on the budget left, the smallest share over steps, tokens and cost (0 to 1). */
      minBudgetLeft: fraction.optional(),
      maxBudgetLeft: fraction.optional(),
    })
    // Only once every bound is valid on its own: a rule that could never match is a mistake worth naming.
    .refine((w) => (w.minTurn ?? 0) <= (w.maxTurn ?? Infinity), { message: 'minTurn is above maxTurn: the rule could never match', when: noIssuesYet })
    .refine((w) => (w.minToolCalls ?? 0) <= (w.maxToolCalls ?? Infinity), { message: 'minToolCalls is above maxToolCalls: the rule could never match', when: noIssuesYet })
    .refine((w) => (w.minBudgetLeft ?? 0) <= (w.maxBudgetLeft ?? 1), { message: 'minBudgetLeft is above maxBudgetLeft: the rule could never match', when: noIssuesYet })
    .default({}),
});
export type RoutingRule = z.infer<typeof RoutingRule>;

/** Picks the model of each turn: the first rule that matches, else the agent's model. */
export const RoutingPolicy = z.strictObject({
  rules: z.array(RoutingRule).min(1, 'a routing policy needs at least one rule'),
});
export type RoutingPolicy = z.infer<typeof RoutingPolicy>;

/** What the session knows when it routes a turn. */
export interface TurnFacts {
  turn: number;
  kind: TurnKind;
  /** Tool calls the model made in the previous turn. */
  toolCalls: number;
  /** Turns that went wrong so far: a failed or refused tool call, or output sent back for repair (a person's denial is not one). */
  failures: number;
  /** The smallest share left over steps, tokens and cost, 0 to 1. */
  budgetLeft: number;
}

/** Which model a turn uses and why: an event, a span attribute and part of the checkpoint. */
export const RoutingDecision = z.object({
  turn: z.number().int().positive(),
  model: z.string(),
  /** The rule that chose it; null when none matched and the default was used. */
  rule: z.string().nullable(),
  reason: z.string(),
});
export type RoutingDecision = z.infer<typeof RoutingDecision>;

/** The conditions of `rule` that `facts` meet, described; undefined when one fails. */
function matchedConditions(rule: RoutingRule, facts: TurnFacts): string[] | undefined {
  const w = rule.when;
  // [the bound, whether the facts meet it, how to say so]; a condition not given says nothing.
  const conditions: Array<[unknown, () => boolean, () => string]> = [
    [w.turnKinds, () => w.turnKinds?.includes(facts.kind) ?? true, () => `turn kind ${facts.kind}`],
    [w.minTurn, () => facts.turn >= (w.minTurn ?? 0), () => `turn ${facts.turn} ≥ ${w.minTurn}`],
    [w.maxTurn, () => facts.turn <= (w.maxTurn ?? Infinity), () => `turn ${facts.turn} ≤ ${w.maxTurn}`],
    [w.minToolCalls, () => facts.toolCalls >= (w.minToolCalls ?? 0), () => `${facts.toolCalls} tool calls last turn ≥ ${w.minToolCalls}`],
    [w.maxToolCalls, () => facts.toolCalls <= (w.maxToolCalls ?? Infinity), () => `${facts.toolCalls} tool calls last turn ≤ ${w.maxToolCalls}`],
    [w.minFailures, () => facts.failures >= (w.minFailures ?? 0), () => `${facts.failures} failures so far ≥ ${w.minFailures}`],
    [w.minBudgetLeft, () => facts.budgetLeft >= (w.minBudgetLeft ?? 0), () => `budget left ${percent(facts.budgetLeft)} ≥ ${percent(w.minBudgetLeft ?? 0)}`],
    [w.maxBudgetLeft, () => facts.budgetLeft <= (w.maxBudgetLeft ?? 1), () => `budget left ${percent(facts.budgetLeft)} ≤ ${percent(w.maxBudgetLeft ?? 1)}`],
  ];
  const described: string[] = [];
  for (const [bound, holds, describe] of conditions) {
    if (bound === undefined) continue;
    if (!holds()) return undefined;
    described.push(describe());
  }
  return described;
}

const percent = (share: number) => `${Math.round(share * 100)}%`;

/** The model for a turn under `policy`, with the rule and the reason; pure. */
export function routeTurn(policy: RoutingPolicy, facts: TurnFacts, defaultModel: string): RoutingDecision {
  for (const [index, rule] of policy.rules.entries()) {
    const conditions = matchedConditions(rule, facts);
    if (!conditions) continue;
    const name = rule.name ?? `rule ${index + 1}`;
    return { turn: facts.turn, model: rule.model, rule: name, reason: `${name}: ${conditions.length > 0 ? conditions.join(', ') : 'always'}` };
  }
  return { turn: facts.turn, model: defaultModel, rule: null, reason: `no rule matched (turn kind ${facts.kind}): the agent's model` };
}
