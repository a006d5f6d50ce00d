import { stepsSpent } from './delegation.ts';
import { routeTurn, type RoutingDecision, type TurnFacts, type TurnKind } from './modelRouting.ts';
import type { SessionContext } from './sessionContext.ts';

const spokenByPerson: ReadonlySet<string> = new Set(['answered', 'redirected', 'handed_back']);
const decidedByPerson: ReadonlySet<string> = new Set(['denied', 'approval_expired']);

/**
 * The turns that went wrong: a tool call that failed or was refused, or output sent back for
 * repair. A call a person denied (or let expire) is their decision, not a failure; one mistake
 * that is both a refused call and a repair counts once.
 */
function failedTurns(context: SessionContext): Set<number> {
  const deniedIn = new Set(context.interventions.filter((i) => decidedByPerson.has(i.kind)).map((i) => i.turn));
  const failed = new Set<number>();
  for (const entry of context.ledger) {
    if (entry.status === 'ok') continue;
    if (entry.status === 'rejected' && entry.errorCode === 'FORBIDDEN' && deniedIn.has(entry.turn)) continue;
    failed.add(entry.turn);
  }
  for (const notice of context.notices) if (notice.kind === 'repair') failed.add(notice.turn);
  return failed;
}

/** What the session knows about the turn it is starting (`context.turn` is already this turn's number). */
export function turnFactsOf(context: SessionContext): TurnFacts {
  const { turn, budgets, usage } = context;
  const previous = turn - 1;
  const previousCalls = context.ledger.filter((entry) => entry.turn === previous && entry.by === undefined);
  const failed = failedTurns(context);
  let kind: TurnKind;
  if (turn === 1) kind = 'first';
  else if (context.consecutiveRepairs > 0) kind = 'repair';
  else if (context.interventions.some((i) => i.turn >= previous && spokenByPerson.has(i.kind))) kind = 'after_person';
  else if (failed.has(previous)) kind = 'after_tool_failure';
  else kind = 'after_tools';
  const share = (spent: number, limit: number) => Math.max(0, 1 - spent / limit);
  return {
    turn,
    kind,
    toolCalls: previousCalls.length,
    failures: failed.size,
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
