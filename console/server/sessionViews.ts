import type { StateValue } from 'xstate';
import type { Checkpoint } from '../../actors/durability/checkpointStore.ts';
import { pendingExitAsCall } from '../../actors/session/phaseMoves.ts';
import { nextPhaseToolName } from '../../machines/phaseScreening.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import { activePhasesOf } from '../../machines/workflowMachine.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import type { ControlName, SessionDetail, SessionSummary, WaitingCall } from '../consoleApi.ts';
import { activeStateIdsOf, statePathOf, type DrawnMachine } from './statechartGraph.ts';
import { sessionWorkflowOf } from './sessionWorkflow.ts';

const contextOf = (checkpoint: Checkpoint) => checkpoint.snapshot.context as SessionContext;

/** A checkpoint as a row of the sessions table. */
export function sessionSummaryOf(checkpoint: Checkpoint): SessionSummary {
  const context = contextOf(checkpoint);
  return {
    sessionId: checkpoint.sessionId,
    agent: checkpoint.agent,
    tenant: context.tenant ?? null,
    status: checkpoint.status,
    state: statePathOf(checkpoint.snapshot.value),
    outcome: context.outcome?.status ?? null,
    turn: context.turn ?? 0,
    toolCalls: context.toolCalls ?? 0,
    inputTokens: context.usage?.inputTokens ?? 0,
    outputTokens: context.usage?.outputTokens ?? 0,
    costUsd: context.usage?.costUsd ?? 0,
    startedAt: context.startedAt ?? Date.parse(checkpoint.updatedAt),
    updatedAt: checkpoint.updatedAt,
    waitingForApproval: waitingFor(context).length,
    task: checkpoint.task,
  };
}

/**
 * What waits for a person's decision: the calls that need approval, or the workflow's exit the
 * model chose, shown as the approval request shows it (`next_phase`, id `next_phase:<to>`) so
 * that approving it from the page names it as the session knows it.
 */
function waitingFor(context: SessionContext): WaitingCall[] {
  const calls = (context.accepted ?? []).filter((call) => call.requiresApproval && !call.approval && !context.outcomes?.[call.callId]).map((call) => ({
    callId: call.callId,
    tool: call.name,
    arguments: call.arguments,
    reason: `${call.name} is marked as needing a person's approval before it runs`,
  }));
  // A checkpoint from before workflows has no phase.
  const phase = context.phase ?? null;
  if (!phase?.pendingExit) return calls;
  const leaving = `the model chose to leave ${activePhasesOf(phase.value as StateValue).join(' › ')} for ${phase.pendingExit.to}, a move a person approves first`;
  return [...calls, ...pendingExitAsCall({ phase }).map((exit) => ({ callId: exit.callId, tool: exit.name, arguments: exit.arguments, reason: leaving }))];
}

/** The top-level state a state value is in (`validating` for `{ validating: 'routing' }`). */
const topStateOf = (value: unknown): string => (typeof value === 'string' ? value : value && typeof value === 'object' ? Object.keys(value)[0] ?? '' : '');

/**
 * The controls that can apply in a state. A checkpoint is written once a step, so a running
 * session may be a step further on: the session's host has the last word, and says why it refuses.
 */
export function controlsFor(checkpoint: Checkpoint): ControlName[] {
  if (checkpoint.status === 'ended') return [];
  switch (topStateOf(checkpoint.snapshot.value)) {
    case 'awaiting_approval': case 'awaiting_phase_approval': return ['approve', 'deny', 'interrupt', 'cancel'];
    case 'interrupted': return ['resume', 'redirect', 'rollback', 'cancel'];
    case 'rolling_back': return ['cancel'];
    case 'escalated': return ['answer', 'takeover', 'rollback', 'cancel'];
    case 'manual': return ['call', 'handback', 'cancel'];
    default: return ['interrupt', 'redirect', 'cancel'];
  }
}

/** One session as its checkpoint tells it, read with its journal (the ledger); `machine` is the session statechart its graph was drawn from. */
export function sessionDetailOf(checkpoint: Checkpoint, options: { machine: DrawnMachine; jaegerUrl: string | null }): SessionDetail {
  const context = contextOf(checkpoint);
  const traceId = traceIdOf(checkpoint.traceContext);
  const outcome = context.outcome;
  return {
    summary: sessionSummaryOf(checkpoint),
    activeStateIds: activeStateIdsOf(options.machine, checkpoint.snapshot.value),
    waiting: waitingFor(context),
    ledger: (context.ledger ?? []).map((entry) => ({
      turn: entry.turn, tool: entry.tool, arguments: entry.arguments, status: entry.status,
      ...(entry.errorCode ? { errorCode: entry.errorCode } : {}), ...(entry.durationMs !== undefined ? { durationMs: entry.durationMs } : {}),
      undone: Boolean(entry.undone),
    })),
    interventions: (context.interventions ?? []).map((i) => ({ turn: i.turn, kind: i.kind, ...(i.by ? { by: i.by } : {}), ...(i.detail ? { detail: i.detail } : {}) })),
    output: outcome && 'output' in outcome && typeof outcome.output === 'string' ? outcome.output : null,
    stopReason: outcome?.stopReason ?? null,
    traceId,
    traceUrl: traceId && options.jaegerUrl ? `${options.jaegerUrl.replace(/\/+$/, '')}/trace/${traceId}` : null,
    takenOverBy: context.takenOverBy ?? null,
    controls: controlsFor(checkpoint),
    workflow: sessionWorkflowOf(context.workflow, context.phase),
  };
}

/** The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`). */
function traceIdOf(carrier: Record<string, string>): string | null {
  const match = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(carrier.traceparent ?? '');
  return match?.[1] ?? null;
}

/**
 * The state a session event says the session was in, for the path drawn on the statechart.
 * Checkpoints are once a step, so the path is read from the events, which are replayed from the
 * first: null for an event that does not mark a state.
 */
/** Where the session checks at each guardrail point. */
const guardrailStates = { input: 'checking_input', toolInput: 'validating.checking_tool_input', toolOutput: 'checking_tool_output', output: 'checking_output' } as const;

export function stateIdOfEvent(machineId: string, event: SessionEvent): string | null {
  const state = (key: string) => `${machineId}.${key}`;
  switch (event.type) {
    case 'session.started': return state('preparing');
    case 'turn.started': case 'context.assembled': case 'model.routed': case 'model.retrying': return state('calling_model');
    case 'model.responded': return state('validating');
    case 'tool.call.rejected': return state('validating.triaging_tool_calls');
    case 'approval.requested': return state(event.calls.some((call) => call.tool === nextPhaseToolName) ? 'awaiting_phase_approval' : 'awaiting_approval');
    case 'tool.call.started': case 'tool.call.finished': case 'tool.call.retrying': case 'tool.call.fallback': return state('running_tools');
    case 'loop.detected': return state('observing');
    // Moves are made as the session observes a turn's end; an approved one as it leaves awaiting_phase_approval, for preparing.
    case 'workflow.transitioned': return state(event.trigger === 'approval' ? 'preparing' : 'observing');
    case 'guardrail.decided': return state(guardrailStates[event.point]);
    case 'session.repair': return state('repairing');
    case 'session.model_switched': case 'model.fallback': return state('switching_model');
    case 'session.interrupted': return state('interrupted');
    case 'session.rolled_back': return state('rolling_back');
    case 'session.redirected': case 'session.handed_back': return state('preparing');
    case 'session.taken_over': return state('manual');
    case 'session.finished': return state(event.status);
    default: return null;
  }
}
