import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Delegation } from '../../machines/delegation.ts';
import { decodeSessionEvents, type SessionFinished } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { SessionEventPublisher } from '../session/sessionEvents.ts';

/** A running relay; stop it once the delegation's reply has arrived. */
export interface SpecialistEventRelay {
  /**
   * The specialist session's own first `session.finished`: how the delegation ended even when the
   * member that took the call died and another member finished the session (no reply ever comes then).
   */
  readonly finished: Promise<SessionFinished>;
  stop(): void;
}

/**
 * Follows a specialist's session while the delegating call runs and republishes each of its
 * events into the delegating session's stream as a `specialist.event`, marked with the
 * specialist's name and depth. Events a specialist relayed from its own specialists pass through
 * as they are, so the top-level stream shows the whole tree. The specialist publishes its events
 * before its reply on the same connection, so every event is here before the reply is.
 */
export function relaySpecialistEvents(
  nc: NatsConnection,
  names: WireNames,
  delegation: Delegation,
  relayed: { agent: string; callId: string },
  into: SessionEventPublisher,
  logger: Logger,
): SpecialistEventRelay {
  let ended!: (finished: SessionFinished) => void;
  let lastSeq = -1;
  const finished = new Promise<SessionFinished>((resolve) => (ended = resolve));
  const subscription = nc.subscribe(names.subjects.sessionEvents(delegation.sessionId), {
    callback: (error, msg) => {
      if (error) return;
      const decoded = decodeSessionEvents(msg.data, `An event of specialist ${relayed.agent}`);
      for (const error of decoded.errors) logger.warn({ error, specialistSessionId: delegation.sessionId }, 'not relaying a malformed specialist event');
      for (const event of decoded.events) {
        // The specialist's end may arrive twice (published again until its stream stored it): relayed once.
        if (event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        if (event.type === 'specialist.event') {
          into.publish({ type: 'specialist.event', agent: event.agent, depth: event.depth, callId: event.callId, event: event.event });
        } else {
          into.publish({ type: 'specialist.event', agent: relayed.agent, depth: delegation.depth, callId: relayed.callId, event });
          if (event.type === 'session.finished') ended(event);
        }
      }
    },
  });
  return { finished, stop: () => subscription.unsubscribe() };
}
