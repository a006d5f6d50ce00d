import * as z from 'zod';
import { Budgets } from './budgets.ts';
import { ContextSettings, ContextSummary } from './contextAssembly.ts';
import { ChatMessage, ModelResponse } from './conversation.ts';
import { DelegatedSpending } from './delegation.ts';
import { Intervention, LedgerEntry } from './ledger.ts';
import { RoutingDecision, RoutingPolicy } from './modelRouting.ts';
import { RecoverySettings } from './recovery.ts';
import { RollbackReport } from './rollback.ts';
import { CacheUse, SessionOutcome } from './sessionOutcome.ts';
import { PlannedToolCall, RejectedToolCall, ToolCallOutcome } from './toolCallOutcome.ts';
import { Usage } from './usage.ts';
import { GuardrailPoint } from '../guardrails/defineGuardrail.ts';
import { WorkflowDefinition } from './workflowDefinition.ts';
import { PhaseChoice, SessionPhase } from './workflowSteps.ts';

/**
 * The session's context ({@link SessionContext}) as a schema, for data that comes from outside the
 * process: a checkpoint read back from the bucket. The statechart and its host trust their context
 * (`context.accepted.filter`, `context.usage.costUsd`); a restored one that breaks this shape would
 * throw inside them, where nothing can turn the throw into an outcome.
 */
export const SessionContextSchema = z.object({
  sessionId: z.string(),
  agentName: z.string(),
  model: z.string(),
  instructions: z.string(),
  task: z.string(),
  budgets: Budgets,
  recovery: RecoverySettings,
  fallbackModels: z.array(z.string()),
  routing: RoutingPolicy.nullable(),
  depth: z.number().int().nonnegative(),
  delegationDepthLeft: z.number().int(),
  contextSettings: ContextSettings,
  tenant: z.string().nullable(),
  user: z.string().nullable(),
  startedAt: z.number(),
  conversation: z.array(ChatMessage),
  ledger: z.array(LedgerEntry),
  turn: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
  usage: Usage,
  delegated: DelegatedSpending,
  summary: ContextSummary.nullable(),
  contextCalibration: z.number(),
  cache: CacheUse,
  routingDecision: RoutingDecision.nullable(),
  lastResponse: ModelResponse.nullable(),
  accepted: z.array(PlannedToolCall),
  rejected: z.array(RejectedToolCall),
  outcomes: z.record(z.string(), ToolCallOutcome),
  outcome: SessionOutcome.nullable(),
  consecutiveRepairs: z.number().int().nonnegative(),
  loopCheckFromTurn: z.number().int(),
  refocused: z.boolean(),
  notices: z.array(z.record(z.string(), z.unknown())),
  approvalDeadline: z.number().nullable(),
  interruptRequested: z.boolean(),
  pendingInstructions: z.array(z.string()),
  interventions: z.array(Intervention),
  rollbacks: z.array(RollbackReport),
  takenOverBy: z.string().nullable(),
  manualCalls: z.array(z.object({ tool: z.string(), arguments: z.string(), answer: z.string() })),
  workflow: WorkflowDefinition.nullable(),
  phase: SessionPhase.nullable(),
  phaseChoice: PhaseChoice.nullable(),
  guardrailPoints: z.array(GuardrailPoint),
  uncheckedInput: z.array(z.number().int().nonnegative()),
  inputChecks: z.enum(['before', 'beside']),
  heldResponse: ModelResponse.nullable(),
});

/** A state value of the session statechart: a state's name, or nested states by parent. */
const StateValue: z.ZodType<string | { [state: string]: unknown }> = z.union([z.string(), z.record(z.string(), z.lazy(() => StateValue))]);

/**
 * XState's persisted snapshot of a session actor as a checkpoint holds it. Only the shape is
 * checked (`safeParse`, never to replace the data): whether the state exists is XState's to judge
 * when the actor is restored, which throws where the caller can catch it.
 */
export const PersistedSessionSnapshot = z.object({
  status: z.literal('active'),
  value: StateValue,
  context: SessionContextSchema,
  children: z.record(z.string(), z.object({ src: z.string(), snapshot: z.record(z.string(), z.unknown()) }).loose()),
}).loose();
