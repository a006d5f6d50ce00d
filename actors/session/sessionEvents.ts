import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { noUsage } from '../../machines/usage.ts';
import type { SessionEvent, SessionEventBody } from '../../transport/messages.ts';
import { lastStoredSessionEvent } from '../../transport/streams.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { encodeWireMessage } from '../../transport/wireMessage.ts';
import { scrubbedDeep } from '../../guardrails/defineGuardrail.ts';

// How long an event watchers must not miss is retried while the events stream cannot store it.
const durablePublishMs = 60_000;
// Room left in a message for its headers (a trace context): a batch that would not fit goes out event by event.
const headerRoomBytes = 4 * 1024;

/**
 * Publishes one session's events in order, stamped with a sequence number and a time, so a
 * watcher can tell a gap from a quiet moment. The events of one moment (those published before the
 * event loop moves on: a tool's answer, the next turn's start and its context, say) go out as one
 * message, an array (see `decodeSessionEvents`): five events a step were five messages for the
 * server to store and deliver. Publishing never throws into the session.
 */
export class SessionEventPublisher {
  readonly #nc: NatsConnection;
  readonly #sessionId: string;
  readonly #logger: Logger;
  readonly #subject: string;
  #seq: number;
  #pending: SessionEvent[] = [];
  #flushScheduled = false;
  readonly #scrub: ((text: string) => string) | undefined;

  /**
   * Publishes on the session's events subject of the deployment `names` belongs to; `firstSeq`
   * continues a resumed session's numbering from its checkpoint.
   */
  constructor(nc: NatsConnection, names: WireNames, sessionId: string, logger: Logger, firstSeq = 0, scrub?: (text: string) => string) {
    this.#seq = firstSeq;
    this.#scrub = scrub;
    this.#nc = nc;
    this.#sessionId = sessionId;
    this.#logger = logger;
    this.#subject = names.subjects.sessionEvents(sessionId);
  }

  /** The sequence number the next event will get. */
  get nextSeq(): number {
    return this.#seq;
  }

  /** Stamps the event and publishes it with the others of this moment; returns it stamped. */
  publish(body: SessionEventBody): SessionEvent {
    const event = this.#stamp(body);
    this.#pending.push(event);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.flush();
      });
    }
    return event;
  }

  /** Publishes the events waiting to go out now, in order: one message, or one each when together they would not fit in one. */
  flush(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    const batch = pending.length === 1 ? encodeWireMessage(pending[0]) : encodeWireMessage(pending);
    const fits = Buffer.byteLength(batch) <= (this.#nc.info?.max_payload ?? 1024 * 1024) - headerRoomBytes;
    for (const data of fits || pending.length === 1 ? [batch] : pending.map((event) => encodeWireMessage(event))) {
      try {
        this.#nc.publish(this.#subject, data);
      } catch (error) {
        this.#logger.warn({ err: error, events: pending.length }, 'could not publish a session event');
      }
    }
  }

  /**
   * Publishes an event watchers must not miss (the session's end) and keeps at it until the
   * events stream acknowledges it, for up to a minute: a stream electing a leader drops what is
   * published meanwhile, and a watcher would wait for the end forever. The stream drops repeats
   * (the message id is the session and sequence); live watchers may see one again and drop it by
   * its sequence number. Without a stream it is published once, as {@link publish} does. Returns
   * the event at once; `stored` settles when it is stored or given up.
   */
  publishDurably(body: SessionEventBody): { event: SessionEvent; stored: Promise<boolean> } {
    // What came before it goes out before it.
    this.flush();
    const event = this.#stamp(body);
    const data = encodeWireMessage(event);
    const stored = (async () => {
      const js = jetstream(this.#nc);
      const until = Date.now() + durablePublishMs;
      for (let delay = 100; ; delay = Math.min(2_000, delay * 2)) {
        try {
          await js.publish(this.#subject, data, { msgID: `${this.#sessionId}-${event.seq}`, timeout: 2_000 });
          return true;
        } catch (error) {
          // A publish reaches the subject's live watchers whatever the stream does: with no stream to store
          // it (no responders, or a timeout when watchers are all that listen), that was all there is to do.
          if (this.#nc.isClosed() || !(await this.#captured())) return false;
          // Larger than a NATS message: no retry will ever carry it.
          if (/max_payload|maximum payload/i.test(String(error))) {
            this.#logger.error({ err: error, event: event.type }, 'a session event is larger than a NATS message; watchers replaying the session will not see it');
            return false;
          }
          if (Date.now() + delay >= until) {
            this.#logger.error({ err: error, event: event.type }, 'the events stream did not store a session event; watchers replaying the session will not see it');
            return false;
          }
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    })().catch((error: unknown) => {
      this.#logger.warn({ err: error, event: event.type }, 'could not publish a session event');
      return false;
    });
    return { event, stored };
  }

  /** Whether a stream captures the session's events; true when that cannot be told (JetStream busy electing a leader). */
  async #captured(): Promise<boolean> {
    try {
      await (await jetstreamManager(this.#nc, { checkAPI: false })).streams.find(this.#subject);
      return true;
    } catch (error) {
      return !/no stream matches|not enabled/i.test(error instanceof Error ? error.message : String(error));
    }
  }

  #stamp(body: SessionEventBody): SessionEvent {
    const scrubbed = this.#scrub ? scrubbedDeep(body, this.#scrub) : body;
    return { ...scrubbed, sessionId: this.#sessionId, seq: this.#seq++, at: new Date().toISOString() } as SessionEvent;
  }
}

/**
 * The sequence number a resumed session's next event must carry: past both its checkpoint's and
 * the last event its stream stored. Events published after the last checkpoint (a write-ahead
 * checkpoint precedes the call it sends, and the call's events follow it) would otherwise be numbered
 * again, and watchers, which drop what they have seen, would drop the resumed session's events.
 */
export async function resumedEventSeq(nc: NatsConnection, names: WireNames, sessionId: string, fromCheckpoint: number): Promise<number> {
  const last = await lastStoredSessionEvent(nc, names, sessionId);
  // No stream, or no event stored yet: the checkpoint's numbering is all there is.
  return typeof last === 'object' && last.seq >= fromCheckpoint ? last.seq + 1 : fromCheckpoint;
}

/**
 * Why a session was refused: `rejected` for good (unreadable, unknown agent); `not_started` when its
 * host died before storing its first checkpoint, so nothing of it ran that counts, and the same start
 * sent again runs it (a delegation is retried).
 */
export type RefusalReason = 'rejected' | 'not_started';

/**
 * Tells a session's watchers it cannot go on (an unreadable checkpoint, an unknown agent, a refused
 * start): a last `session.finished`, numbered past anything the session could have published.
 */
export function publishRefusal(nc: NatsConnection, names: WireNames, sessionId: string, reason: string, logger: Logger, stopReason: RefusalReason = 'rejected'): void {
  new SessionEventPublisher(nc, names, sessionId, logger, 1_000_000).publish({
    type: 'session.finished', status: 'failed', output: null, stopReason, error: reason,
    steps: 0, toolCalls: 0, usage: noUsage, traceId: '', durationMs: 0,
  });
}
