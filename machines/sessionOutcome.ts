import * as z from 'zod';
import { BudgetNameSchema } from './budgets.ts';
import { Intervention, LedgerEntry } from './ledger.ts';
import { DelegatedSpending } from './delegation.ts';
import { Usage } from './usage.ts';
import { PhaseMove } from './workflowSteps.ts';

/** The final states of a session. */
export const SessionStatus = {
  completed: 'completed',
  budget_exhausted: 'budget_exhausted',
  escalated: 'escalated',
  failed: 'failed',
  cancelled: 'cancelled',
  blocked: 'blocked',
} as const;
export type SessionStatus = (typeof SessionStatus)[keyof typeof SessionStatus];
export const SessionStatusSchema = z.enum(Object.values(SessionStatus) as [SessionStatus, ...SessionStatus[]]);

/** Why the session stopped, one variant per final state. */
export const SessionOutcome = z.discriminatedUnion('status', [
  z.object({ status: z.literal('completed'), stopReason: z.literal('answered'), output: z.string() }),
  z.object({
    status: z.literal('budget_exhausted'),
    stopReason: z.string(),
    budget: BudgetNameSchema,
    /** The latest text the model produced, if any: the partial result. */
    output: z.string().nullable(),
  }),
  z.object({ status: z.literal('escalated'), stopReason: z.string(), output: z.string().nullable() }),
  z.object({ status: z.literal('failed'), stopReason: z.string(), error: z.string(), output: z.string().nullable() }),
  z.object({ status: z.literal('cancelled'), stopReason: z.string(), output: z.string().nullable() }),
  /** A guardrail tripped on what came in or what would have gone out: which one, where, and why. */
  z.object({
    status: z.literal('blocked'),
    stopReason: z.string(),
    guardrail: z.string(),
    point: z.enum(['input', 'output']),
    reason: z.string(),
    output: z.null(),
  }),
]);
export type SessionOutcome = z.infer<typeof SessionOutcome>;

/** Answers a session took from the cache instead of asking again. */
export const CacheUse = z.object({
  modelHits: z.number().int().nonnegative(),
  toolHits: z.number().int().nonnegative(),
  /** What the model answers taken from the cache cost when first asked for. */
  savedUsd: z.number().nonnegative(),
});
export type CacheUse = z.infer<typeof CacheUse>;
export const noCacheUse: CacheUse = { modelHits: 0, toolHits: 0, savedUsd: 0 };

/** The session actor's output when it reaches a final state. */
export const SessionResult = z.object({
  outcome: SessionOutcome,
  /** Model calls, the specialists' included. */
  steps: z.number().int().nonnegative(),
  /** Tool calls, the specialists' included. */
  toolCalls: z.number().int().nonnegative(),
  /** Tokens and cost, the specialists' included. */
  usage: Usage,
  /** The specialists' share of the above. */
  delegated: DelegatedSpending,
  cache: CacheUse,
  ledger: z.array(LedgerEntry),
  interventions: z.array(Intervention),
  /** With a workflow: the phases the session ended in, and every move between phases on the way. */
  workflow: z.object({ phases: z.array(z.string()), path: z.array(PhaseMove) }).optional(),
});
export type SessionResult = z.infer<typeof SessionResult>;
