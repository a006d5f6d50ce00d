import type { DoneActorEvent, ErrorActorEvent } from 'xstate';
import type { ContextSettings, ContextSummary } from './contextAssembly.ts';
import type { ChatMessage, ModelToolCall } from './conversation.ts';
import type { LedgerEntry } from './ledger.ts';
import type { RollbackStep } from './rollback.ts';
import type { PlannedToolCall, ToolCallOutcome } from './toolCallOutcome.ts';
import type { GuardrailDecision, GuardrailPoint } from '../guardrails/defineGuardrail.ts';
import type { Usage } from './usage.ts';

/** The session statechart's interface: the events it accepts and the inputs of the actors it runs. */

export type SessionEvent =
  | { type: 'session.cancel'; reason: string; by?: string }
  | { type: 'session.escalate'; reason: string }
  /** A person's answer to an escalated session: it goes to the model and the loop resumes. */
  | { type: 'session.answer'; answer: string; by?: string }
  /**
   * The wall-clock deadline (`startedAt + maxWallClockMs`) has passed. The host arms the timer: an
   * XState \`after\` would not survive a restore from a checkpoint.
   */
  | { type: 'session.deadline_reached' }
  /** A person approves calls waiting for approval (all of them when `callIds` is absent). */
  | { type: 'session.approve'; by: string; at: string; callIds?: string[] }
  /** A person denies calls waiting for approval; the model is told, with the reason. */
  | { type: 'session.deny'; by: string; reason: string; callIds?: string[] }
  /** The approval deadline passed (the host's timer): whatever still waits is denied. */
  | { type: 'session.approval_expired' }
  /**
   * When an exit of the workflow waiting for a person's approval is denied, from the host's clock
   * (the machine reads none); sent once the session waits, stored so it holds across a restart.
   */
  | { type: 'session.approval_deadline'; at: number }
  /** Pause at the next safe point. */
  | { type: 'session.interrupt'; by?: string }
  /** A new instruction from a person: it reaches the model before its next call (and resumes an interrupted session). */
  | { type: 'session.redirect'; instruction: string; by?: string }
  /** Resume an interrupted session as it was. */
  | { type: 'session.continue'; by?: string }
  /** Undo the executed calls after `toTurn`, newest first (only while parked with a person). */
  | { type: 'session.rollback'; toTurn: number; by: string }
  /** A person takes an escalated session over and calls tools through it (manual mode). */
  | { type: 'session.takeover'; by: string }
  /** A tool call made by the person in control: validated, run and recorded like the model's. */
  | { type: 'session.manual_call'; toolCallId: string; tool: string; arguments: string }
  /** The person gives the session back to the model, with what they did and an optional instruction. */
  | { type: 'session.handback'; instruction?: string }
  // Tool-call children report here; their ids are `tool:<callId>`.
  | DoneActorEvent<ToolCallOutcome, string>
  | ErrorActorEvent<unknown, string>;

export interface CallModelInput {
  sessionId: string;
  turn: number;
  model: string;
  /** Models to try, in order, when `model` keeps failing at the API level. */
  fallbackModels: string[];
  /** The whole transcript; the model actor assembles the request from it, the summary and the ledger, within the context budget. */
  messages: ChatMessage[];
  summary: ContextSummary | null;
  ledger: LedgerEntry[];
  contextSettings: ContextSettings;
  calibration: number;
  /** What the workflow's current phase lets the model use; null without a workflow. */
  offer: PhaseToolOffer | null;
}

/** The tools a workflow's phase offers the model (see `phaseToolOffer`). */
export interface PhaseToolOffer {
  /** The active phases, outermost first. */
  phases: string[];
  /** Tool names and `<domain>_*` patterns; null: every tool of the agent. */
  tools: string[] | null;
  /** The function through which the model chooses an exit, when the phase has exits it chooses. */
  nextPhase: { name: string; description: string; parameters: Record<string, unknown> } | null;
}
export interface TriageToolCallsInput {
  sessionId: string;
  turn: number;
  toolCalls: ModelToolCall[];
}
export interface RollBackInput {
  sessionId: string;
  toTurn: number;
  by: string;
  plan: RollbackStep[];
}

/** Content the agent's guardrails check at one point: people's messages, calls' arguments, results, the answer. */
export interface CheckGuardrailsInput {
  sessionId: string;
  turn: number;
  point: GuardrailPoint;
  /** The workflow's active phases (none without one): a guardrail a phase names checks only in it. */
  phases: string[];
  /** `id` says whose content it is: a message's place in the conversation, or a call's id. */
  items: Array<{ id: string; content: string; tool?: string }>;
}

/** What the guardrails decided, item by item: the content to go on with, or the decision that blocked it. */
export interface GuardrailCheck {
  items: Array<{ id: string; content: string; rewritten: boolean; blocked?: GuardrailDecision }>;
  /** What the models the checks called (classifiers) cost: the session's spending, under its budgets. */
  usage: Usage;
}

export interface ExecuteToolCallInput {
  sessionId: string;
  turn: number;
  call: PlannedToolCall;
}
