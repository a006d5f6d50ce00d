import type { Logger } from 'pino';
import { nextPhaseToolName } from '../../machines/phaseScreening.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import type { PhaseMove } from '../../machines/workflowSteps.ts';
import type { SessionEventPublisher } from './sessionEvents.ts';
import type { SessionTrace } from './sessionTrace.ts';
import { TroupeAttribute } from '../../observability/spans.ts';

/** Makes a move between the workflow's phases observable: a session event, a span event and a log line. */
export function publishPhaseMove(move: PhaseMove, events: SessionEventPublisher, trace: SessionTrace, logger: Logger): void {
  events.publish({ type: 'workflow.transitioned', ...move });
  // On the session's span: by the time the host sees the move, the next turn's span may have begun.
  trace.addSessionEvent('workflow.transitioned', {
    [TroupeAttribute.turn]: move.turn,
    'troupe.workflow.from': move.from.join(' › '), 'troupe.workflow.to': move.to.join(' › '), 'troupe.workflow.trigger': move.trigger,
    ...(move.detail ? { 'troupe.workflow.detail': move.detail } : {}), ...(move.by ? { 'troupe.workflow.by': move.by } : {}),
  });
  logger.info({ turn: move.turn, from: move.from, to: move.to, trigger: move.trigger, detail: move.detail, by: move.by }, `workflow moved to ${move.to.join(' › ')}`);
}

/**
 * The exit that waits for approval, as the approval request shows waiting calls: the model's
 * `next_phase` with where it would go and why. Clients that approve calls approve it the same way.
 */
export function pendingExitAsCall(context: Pick<SessionContext, 'phase'>): Array<{ callId: string; name: string; arguments: Record<string, unknown> }> {
  const pending = context.phase?.pendingExit;
  return pending ? [{ callId: pendingExitCallId(pending.to), name: nextPhaseToolName, arguments: { to: pending.to, reason: pending.reason } }] : [];
}

/** The id an exit waiting for approval goes by in approval requests and commands. */
export const pendingExitCallId = (to: string) => `${nextPhaseToolName}:${to}`;
