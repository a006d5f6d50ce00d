import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { noUsage } from '../../machines/usage.ts';
import type { SessionEvent, SessionEventBody } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { encodeWireMessage } from '../../transport/wireMessage.ts';

/**
 * Publishes one session's events in order, stamped with a sequence number and a time, so a
 * watcher can tell a gap from a quiet moment. Publishing never throws into the session.
 */
export class SessionEventPublisher {
  readonly #nc: NatsConnection;
  readonly #sessionId: string;
  readonly #logger: Logger;
  readonly #subject: string;
  #seq: number;

  /**
   * Publishes on the session's events subject of the deployment `names` belongs to; `firstSeq`
   * continues a resumed session's numbering from its checkpoint.
   */
  constructor(nc: NatsConnection, names: WireNames, sessionId: string, logger: Logger, firstSeq = 0) {
    this.#seq = firstSeq;
    this.#nc = nc;
    this.#sessionId = sessionId;
    this.#logger = logger;
    this.#subject = names.subjects.sessionEvents(sessionId);
  }

  /** The sequence number the next event will get. */
  get nextSeq(): number {
    return this.#seq;
  }

  publish(body: SessionEventBody): SessionEvent {
    const event = { ...body, sessionId: this.#sessionId, seq: this.#seq++, at: new Date().toISOString() } as SessionEvent;
    try {
      this.#nc.publish(this.#subject, encodeWireMessage(event));
    } catch (error) {
      this.#logger.warn({ err: error, event: event.type }, 'could not publish a session event');
    }
    return event;
  }
}

/**
 * The sequence number a resumed session's next event must carry: past both its checkpoint's and
 * the last event its stream stored. Events published after the last checkpoint (a write-ahead
 * checkpoint precedes the call it sends, and the call's events follow it) would otherwise be numbered
 * again, and watchers, which drop what they have seen, would drop the resumed session's events.
 */
export async function resumedEventSeq(nc: NatsConnection, names: WireNames, sessionId: string, fromCheckpoint: number, logger: Logger): Promise<number> {
  try {
    const jsm = await jetstreamManager(nc);
    const last = await jsm.streams.getMessage(names.streams.sessionEvents, { last_by_subj: names.subjects.sessionEvents(sessionId) });
    const seq = (last?.json<{ seq?: unknown }>() ?? {}).seq;
    return typeof seq === 'number' && Number.isInteger(seq) && seq >= fromCheckpoint ? seq + 1 : fromCheckpoint;
  } catch (error) {
    // No stream, or no event stored yet: the checkpoint's numbering is all there is.
    logger.debug({ err: error, sessionId }, 'no stored event to continue the numbering from');
    return fromCheckpoint;
  }
}

/**
 * Tells a session's watchers it cannot go on (an unreadable checkpoint, an unknown agent, a refused
 * start): a last `session.finished`, numbered past anything the session could have published.
 */
export function publishRefusal(nc: NatsConnection, names: WireNames, sessionId: string, reason: string, logger: Logger): void {
  new SessionEventPublisher(nc, names, sessionId, logger, 1_000_000).publish({
    type: 'session.finished', status: 'failed', output: null, stopReason: 'rejected', error: reason,
    steps: 0, toolCalls: 0, usage: noUsage, traceId: '', durationMs: 0,
  });
}
