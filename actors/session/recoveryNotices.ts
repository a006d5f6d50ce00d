import type { Logger } from 'pino';
import type { RecoveryNotice } from '../../machines/recovery.ts';
import type { SessionEventPublisher } from './sessionEvents.ts';
import type { SessionTrace } from './sessionTrace.ts';

/** Makes what the statechart did to recover observable: a session event, a span event and a log line. */
export function publishRecoveryNotice(notice: RecoveryNotice, events: SessionEventPublisher, trace: SessionTrace, logger: Logger): void {
  switch (notice.kind) {
    case 'repair':
      events.publish({ type: 'session.repair', turn: notice.turn, reason: notice.reason, consecutive: notice.consecutive });
      trace.addEvent('session.repair', { reason: notice.reason, consecutive: notice.consecutive });
      logger.info({ turn: notice.turn, reason: notice.reason, consecutive: notice.consecutive }, 'asking the model to repair its output');
      break;
    case 'model_switched':
      events.publish({ type: 'session.model_switched', turn: notice.turn, from: notice.from, to: notice.to, reason: notice.reason });
      trace.addEvent('session.model_switched', { from: notice.from, to: notice.to });
      logger.warn({ from: notice.from, to: notice.to, reason: notice.reason }, 'switching to the fallback model');
      break;
    case 'loop_detected':
      events.publish({ type: 'loop.detected', turn: notice.turn, action: notice.action, description: notice.description, evidence: notice.evidence });
      trace.addEvent('loop.detected', { action: notice.action, 'troupe.loop.kind': notice.evidence.kind });
      logger.warn({ action: notice.action, evidence: notice.evidence }, `loop detected: ${notice.description}`);
      break;
    case 'in_doubt':
      events.publish({ type: 'tool.call.in_doubt', turn: notice.turn, callId: notice.callId, tool: notice.tool, arguments: notice.arguments, evidence: notice.evidence });
      trace.addEvent('tool.call.in_doubt', { 'gen_ai.tool.name': notice.tool, 'gen_ai.tool.call.id': notice.callId });
      logger.warn({ callId: notice.callId, tool: notice.tool, evidence: notice.evidence }, 'a side-effecting call is in doubt; the session goes to a person');
      break;
  }
}
