import { stepsSpent } from './delegation.ts';
import { routeTurn, type RoutingDecision, type TurnFacts, type TurnKind } from './modelRouting.ts';
import type { SessionContext } from './sessionContext.ts';

const spokenByPerson: ReadonlySet<string> = new Set(['answered', 'redirected', 'handed_back']);

/** What the session knows about the turn it is starting (`context.turn` is already this turn's number). */
export function turnFactsOf(context: SessionContext): TurnFacts {
  const { turn, budgets, usage } = context;
  const previous = turn - 1;
  const previousCalls = context.ledger.filter((entry) => entry.turn === previous);
  let kind: TurnKind;
  if (turn === 1) kind = 'first';
  else if (context.consecutiveRepairs > 0) kind = 'repair';
  else if (context.interventions.some((i) => i.turn >= previous && spokenByPerson.has(i.kind))) kind = 'after_person';
  else if (previousCalls.some((entry) => entry.status !== 'ok')) kind = 'after_tool_failure';
  else kind = 'after_tools';
  const share = (spent: number, limit: number) => Math.max(0, 1 - spent / limit);
  return {
    turn,
    kind,
    toolCalls: previousCalls.length,
    failures: context.ledger.filter((entry) => entry.status !== 'ok').length + context.notices.filter((n) => n.kind === 'repair').length,
    budgetLeft: Math.min(
      share(stepsSpent(context) - 1, budgets.maxSteps),
      share(usage.inputTokens + usage.outputTokens, budgets.maxTotalTokens),
      share(usage.costUsd, budgets.maxCostUsd),
    ),
  };
}

/** The routing decision for the turn being started, or null when the agent has no routing policy. */
export function routeCurrentTurn(context: SessionContext): RoutingDecision | null {
  return context.routing ? routeTurn(context.routing, turnFactsOf(context), context.model) : null;
}
