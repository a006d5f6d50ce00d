import type { Budgets } from './budgets.ts';
import type { ContextSettings, ContextSummary } from './contextAssembly.ts';
import type { DelegatedSpending } from './delegation.ts';
import type { CacheUse } from './sessionOutcome.ts';
import type { RoutingDecision, RoutingPolicy } from './modelRouting.ts';
import type { ChatMessage, ModelResponse } from './conversation.ts';
import type { Intervention, LedgerEntry } from './ledger.ts';
import type { RecoveryNotice, RecoverySettings } from './recovery.ts';
import type { RollbackReport } from './rollback.ts';
import type { SessionOutcome, SessionResult } from './sessionOutcome.ts';
import type { PlannedToolCall, RejectedToolCall, ToolCallOutcome } from './toolCallOutcome.ts';
import type { Usage } from './usage.ts';
import type { WorkflowDefinition } from './workflowDefinition.ts';
import type { GuardrailPoint } from '../guardrails/defineGuardrail.ts';
import type { PhaseChoice, SessionPhase } from './workflowSteps.ts';
import { activePhasesOf } from './workflowMachine.ts';
import type { StateValue } from 'xstate';

/** What a session starts from. `startedAt` comes from the host: the machine reads no clock. */
export interface SessionInput {
  sessionId: string;
  agentName: string;
  model: string;
  instructions: string;
  task: string;
  budgets: Budgets;
  recovery: RecoverySettings;
  /** Models to switch to, in order, when the current one keeps producing malformed output. */
  fallbackModels: string[];
  /** Picks each turn's model by rule; null means every turn uses `model`. */
  routing: RoutingPolicy | null;
  /** 0 for a session a client started; a specialist's session is one deeper than the session that delegated to it. */
  depth: number;
  /** How many levels of specialists this session may still delegate to (0: none). */
  delegationDepthLeft: number;
  /** How the session spends its model's context window. */
  contextSettings: ContextSettings;
  /** Whom the session works for, when the caller said: spend is reported per tenant and user. */
  tenant: string | null;
  user: string | null;
  startedAt: number;
  /** The agent's workflow as the session started with it (kept, like its budgets, whatever the agent says later); null without one. */
  workflow: WorkflowDefinition | null;
  /** Where the agent's guardrails check (the checks themselves are the host's): a point without any costs nothing. */
  guardrailPoints: GuardrailPoint[];
  /** `before`: the input guardrails decide before the model reads people's words; `beside`: they race its call. */
  inputChecks: 'before' | 'beside';
}


/** The explicit, serialisable state of a session: what is checkpointed and what the model's context is built from. */
export interface SessionContext extends SessionInput {
  conversation: ChatMessage[];
  ledger: LedgerEntry[];
  /** Model calls made so far; the current turn's number while one runs. */
  turn: number;
  toolCalls: number;
  /** Model and specialist spending: the specialists' share is also in `delegated`. */
  usage: Usage;
  /** What the session's specialists spent, already counted in `usage` (their steps and tool calls are counted here only). */
  delegated: DelegatedSpending;
  /** The rolling summary that stands in for the older turns in the model's context; null until one is needed. */
  summary: ContextSummary | null;
  /** Multiplies token counts: corrected after every model call from the input tokens the model reported. */
  contextCalibration: number;
  /** Answers taken from the cache instead of asked for again, and what they would have cost. */
  cache: CacheUse;
  /** How the current turn's model was chosen; null without a routing policy. */
  routingDecision: RoutingDecision | null;
  lastResponse: ModelResponse | null;
  /** This turn's tool calls: accepted ones wait for an outcome, rejected ones already have their answer. */
  accepted: PlannedToolCall[];
  rejected: RejectedToolCall[];
  outcomes: Record<string, ToolCallOutcome>;
  outcome: SessionOutcome | null;
  /** Turns in a row whose output had to be sent back for repair. */
  consecutiveRepairs: number;
  /** Loop detection looks at the ledger from this turn on (it restarts after a refocus). */
  loopCheckFromTurn: number;
  refocused: boolean;
  notices: RecoveryNotice[];
  /** Epoch milliseconds after which calls waiting for approval are denied; null when none waits. */
  approvalDeadline: number | null;
  /** A person asked to pause: the session stops at the next safe point (before the next model call). */
  interruptRequested: boolean;
  /** Instructions a person gave while a turn was under way: they reach the model before its next call. */
  pendingInstructions: string[];
  /** What people did to the session, in order. */
  interventions: Intervention[];
  /** Every rollback and what it did. */
  rollbacks: RollbackReport[];
  /** The person in control while the session is taken over; null otherwise. */
  takenOverBy: string | null;
  /** Calls the person made during the current take-over, for the model to read when it gets the session back. */
  manualCalls: Array<{ tool: string; arguments: string; answer: string }>;
  /** Where the session is in its workflow (null without one): what it offers the model follows from it. */
  phase: SessionPhase | null;
  phaseChoice: PhaseChoice | null;
  /** People's messages (the task, instructions, answers) the input guardrails have not checked yet, by their place in the conversation. */
  uncheckedInput: number[];
  /** The model's answer, waiting for the input guardrails it raced (`inputChecks: 'beside'`). */
  heldResponse: ModelResponse | null;
}

/** The latest text the model produced: a session's (partial) result. */
export const latestText = (context: SessionContext): string | null => context.lastResponse?.content ?? null;

/** Epoch milliseconds after which the session's wall-clock budget is spent: stored, so it survives restarts. */
export const wallClockDeadline = (context: Pick<SessionContext, 'startedAt' | 'budgets'>): number =>
  context.startedAt + context.budgets.maxWallClockMs;

/** The session's result as it stands: its output when final, and what a parked (escalated) session reports. */
export function sessionResultOf(context: SessionContext): SessionResult {
  return {
    outcome: context.outcome ?? { status: 'failed', stopReason: 'internal', error: 'The session ended without an outcome.', output: null },
    steps: context.turn + context.delegated.steps,
    toolCalls: context.toolCalls + context.delegated.toolCalls,
    usage: context.usage,
    delegated: context.delegated,
    cache: context.cache,
    ledger: context.ledger,
    interventions: context.interventions,
    ...(context.phase ? { workflow: { phases: activePhasesOf(context.phase.value as StateValue), path: context.phase.path } } : {}),
  };
}
