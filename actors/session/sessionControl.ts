import { randomUUID } from 'node:crypto';
import type { MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Actor } from 'xstate';
import type { SessionMachine } from '../../machines/session.ts';
import { SessionControl, type SessionControlReply } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { checkControlSignature, type OperatorKeys } from '../../transport/controlSignatures.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import type { RecordedControl } from './recordedControls.ts';
import type { SessionEventPublisher } from './sessionEvents.ts';
import { pendingExitAsCall } from './phaseMoves.ts';
import type { SessionTrace } from './sessionTrace.ts';

/** What a person's command does to the session now: applied (the actor acts on it) or refused with why. */
export type SessionCommandDecider = (command: SessionControl, operator: string | undefined) => SessionControlReply;

/**
 * Decides a session's commands while this process hosts it: cancel, approve and deny, interrupt,
 * redirect and continue, roll back, take over and hand back, and a person's answer to an escalated
 * session. `operator` is who signed the command, when commands are signed: approvals, denials,
 * rollbacks and take-overs record that name, whatever name the message carries.
 */
export function sessionCommandDecider(actor: Actor<SessionMachine>, trace: SessionTrace, events: SessionEventPublisher, logger: Logger): SessionCommandDecider {
  const decide = (command: SessionControl, operator: string | undefined): SessionControlReply => {
    // Who did it: the authenticated operator when commands are signed, else the name the sender wrote.
    const by = (claimed: string) => operator ?? claimed;
    if (operator !== undefined && 'by' in command && command.by !== operator && command.by !== 'a person') {
      logger.info({ operator, claimedBy: command.by }, 'the command names someone else; recording the operator who signed it');
    }
    const snapshot = actor.getSnapshot();
    const refuse = (reason: string): SessionControlReply => ({ type: 'session.control.ack', accepted: false, reason });
    const accept = (): SessionControlReply => ({ type: 'session.control.ack', accepted: true });
    if (snapshot.status !== 'active') return refuse('the session has ended');
    // For the commands whose sender need not say who they are.
    const who = (claimed: string | undefined) => (operator ?? claimed ? { by: (operator ?? claimed) as string } : {});
    switch (command.type) {
      case 'session.cancel':
        logger.info({ reason: command.reason, ...who(command.by) }, 'session cancelled');
        actor.send({ type: 'session.cancel', reason: command.reason, ...who(command.by) });
        return accept();
      case 'session.answer':
        if (!snapshot.matches('escalated')) return refuse('the session is not waiting for an answer');
        logger.info('a person answered the escalated session; resuming');
        trace.resume();
        actor.send({ type: 'session.answer', answer: command.answer, ...who(command.by) });
        return accept();
      case 'session.approve':
      case 'session.deny': {
        const exitWaits = snapshot.matches('awaiting_phase_approval');
        if (!snapshot.matches('awaiting_approval') && !exitWaits) return refuse('no call is waiting for approval');
        const waiting = exitWaits
          ? pendingExitAsCall(snapshot.context).map((c) => c.callId)
          : snapshot.context.accepted.filter((c) => c.requiresApproval && !c.approval).map((c) => c.callId);
        const unknown = (command.callIds ?? []).filter((id) => !waiting.includes(id));
        if (unknown.length > 0) return refuse(`not waiting for approval: ${unknown.join(', ')} (waiting: ${waiting.join(', ')})`);
        const decided = command.callIds ?? waiting;
        // Published before the actor acts on it: the decision's event comes before the events it causes.
        const decider = by(command.by);
        if (command.type === 'session.approve') {
          events.publish({ type: 'approval.decided', decision: 'approved', by: decider, callIds: decided });
          actor.send({ type: 'session.approve', by: decider, at: new Date().toISOString(), callIds: decided });
        } else {
          events.publish({ type: 'approval.decided', decision: 'denied', by: decider, callIds: decided, reason: command.reason });
          actor.send({ type: 'session.deny', by: decider, reason: command.reason, callIds: decided });
        }
        trace.addEvent(`approval.${command.type === 'session.approve' ? 'approved' : 'denied'}`, { by: decider, calls: decided.length });
        logger.info({ by: decider, callIds: decided, decision: command.type }, 'approval decided');
        return accept();
      }
      case 'session.interrupt':
        actor.send({ type: 'session.interrupt', ...who(command.by) });
        logger.info(who(command.by), 'interrupt requested: the session pauses before its next model call');
        return accept();
      case 'session.redirect':
        events.publish({ type: 'session.redirected', instruction: command.instruction, ...who(command.by) });
        actor.send({ type: 'session.redirect', instruction: command.instruction, ...who(command.by) });
        logger.info(who(command.by), 'redirected with a new instruction');
        return accept();
      case 'session.rollback':
        if (!snapshot.matches('interrupted') && !snapshot.matches('escalated')) return refuse('roll back a session that is paused: interrupt it first');
        logger.info({ toTurn: command.toTurn, by: by(command.by) }, 'rolling back');
        actor.send({ type: 'session.rollback', toTurn: command.toTurn, by: by(command.by) });
        return accept();
      case 'session.takeover':
        if (!snapshot.matches('escalated')) return refuse('only an escalated session can be taken over');
        events.publish({ type: 'session.taken_over', by: by(command.by) });
        actor.send({ type: 'session.takeover', by: by(command.by) });
        logger.info({ by: by(command.by) }, 'taken over by a person');
        return accept();
      case 'session.manual_call':
        if (!snapshot.matches({ manual: 'idle' })) {
          return refuse(snapshot.matches('manual') ? 'the previous manual call is still running' : 'the session is not taken over');
        }
        actor.send({ type: 'session.manual_call', toolCallId: `manual_${randomUUID().slice(0, 8)}`, tool: command.tool, arguments: JSON.stringify(command.arguments) });
        return accept();
      case 'session.handback':
        if (!snapshot.matches('manual')) return refuse('the session is not taken over');
        events.publish({ type: 'session.handed_back', by: snapshot.context.takenOverBy ?? 'a person', ...(command.instruction ? { instruction: command.instruction } : {}) });
        actor.send({ type: 'session.handback', ...(command.instruction ? { instruction: command.instruction } : {}) });
        return accept();
      case 'session.continue':
        if (!snapshot.matches('interrupted')) return refuse('the session is not interrupted');
        actor.send({ type: 'session.continue', ...who(command.by) });
        return accept();
    }
  };
  return decide;
}

/** Who sent a command, when the deployment has operators: the one whose key signed it, or why none did. */
function senderOf(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, operators: OperatorKeys | undefined, sentAt?: number): { ok: true; operator: string | undefined } | { ok: false; reason: string } {
  if (!operators) return { ok: true, operator: undefined };
  return checkControlSignature(subject, data, headers, operators, sentAt);
}

/**
 * Answers a session's control subject for as long as this process hosts it: every message gets an
 * acknowledgement saying whether it was applied and, if not, why. With `operators`, only commands
 * signed by one of them are.
 */
export function serveSessionControl(nc: NatsConnection, names: WireNames, sessionId: string, decide: SessionCommandDecider, logger: Logger, operators?: OperatorKeys): Subscription {
  return nc.subscribe(names.subjects.sessionControl(sessionId), {
    callback: (_error, msg) => {
      const sender = senderOf(msg.subject, msg.data, msg.headers, operators);
      if (!sender.ok) {
        logger.warn({ reason: sender.reason }, 'refused a command that no operator of this deployment signed');
        msg.respond(encodeWireMessage({ type: 'session.control.ack', accepted: false, reason: sender.reason } satisfies SessionControlReply));
        return;
      }
      const decoded = decodeWireMessage(SessionControl, msg.data, 'The control message');
      const reply: SessionControlReply = decoded.ok ? decide(decoded.value, sender.operator) : { type: 'session.control.ack', accepted: false, reason: decoded.error };
      msg.respond(encodeWireMessage(reply));
    },
  });
}

/**
 * Applies a command recorded for the session (see `RecordedControlInbox`) and says what came of it
 * on the session's events (`control.applied`), where its sender, or anyone, reads it.
 */
export function applyRecordedControl(control: RecordedControl, decide: SessionCommandDecider, events: SessionEventPublisher, logger: Logger, operators?: OperatorKeys): { control: string; reply: SessionControlReply } {
  // Signed around when it was recorded, however long it waited for a host.
  const sender = senderOf(control.subject, control.data, control.headers, operators, control.recordedAt);
  const decoded = decodeWireMessage(SessionControl, control.data, 'The recorded command');
  const reply: SessionControlReply = !sender.ok
    ? { type: 'session.control.ack', accepted: false, reason: sender.reason }
    : decoded.ok ? decide(decoded.value, sender.operator) : { type: 'session.control.ack', accepted: false, reason: decoded.error };
  if (!reply.accepted) logger.info({ controlId: control.id, reason: reply.reason }, 'refused a recorded command');
  const command = decoded.ok ? decoded.value.type : 'unreadable';
  announceControl(events, control.id, command, reply);
  return { control: command, reply };
}

/** Says on the session's events what came of a recorded command. */
export function announceControl(events: SessionEventPublisher, controlId: string, control: string, reply: Pick<SessionControlReply, 'accepted' | 'reason'>): void {
  events.publish({ type: 'control.applied', controlId, control, accepted: reply.accepted, ...(reply.reason !== undefined ? { reason: reply.reason } : {}) });
}
