import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Actor } from 'xstate';
import type { SessionMachine } from '../machines/session.ts';
import { SessionControl, type SessionControlReply } from '../transport/messages.ts';
import { subjects } from '../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';
import type { SessionTrace } from './sessionTrace.ts';

/**
 * Answers a session's control subject for as long as this process hosts it: cancel, and a
 * person's answer to an escalated session. Every message gets an acknowledgement saying whether it
 * was accepted and, if not, why.
 */
export function serveSessionControl(nc: NatsConnection, actor: Actor<SessionMachine>, trace: SessionTrace, logger: Logger): Subscription {
  const sessionId = actor.getSnapshot().context.sessionId;
  return nc.subscribe(subjects.sessionControl(sessionId), {
    callback: (_error, msg) => {
      const decoded = decodeWireMessage(SessionControl, msg.data, 'The control message');
      const snapshot = actor.getSnapshot();
      let reply: SessionControlReply;
      if (!decoded.ok) reply = { type: 'session.control.ack', accepted: false, reason: decoded.error };
      else if (snapshot.status !== 'active') reply = { type: 'session.control.ack', accepted: false, reason: 'the session has ended' };
      else if (decoded.value.type === 'session.cancel') {
        logger.info({ reason: decoded.value.reason }, 'session cancelled');
        actor.send({ type: 'session.cancel', reason: decoded.value.reason });
        reply = { type: 'session.control.ack', accepted: true };
      } else if (!snapshot.matches('escalated')) {
        reply = { type: 'session.control.ack', accepted: false, reason: 'the session is not waiting for an answer' };
      } else {
        logger.info('a person answered the escalated session; resuming');
        trace.resume();
        actor.send({ type: 'session.answer', answer: decoded.value.answer });
        reply = { type: 'session.control.ack', accepted: true };
      }
      msg.respond(encodeWireMessage(reply));
    },
  });
}
