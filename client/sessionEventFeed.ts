import { jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { SessionEvent, type SessionFinished } from '../transport/messages.ts';
import { wireNames } from '../transport/subjects.ts';
import { decodeWireMessage } from '../transport/wireMessage.ts';

/** One session's events as a client sees them. */
export interface SessionEventFeed {
  /** Every event in order, from the session's first (when replayable) to the first `session.finished`. One consumer. */
  readonly events: AsyncIterable<SessionEvent>;
  /** The first `session.finished`: a final state, or `escalated` (parked). Resolves whether or not `events` is read. */
  readonly finished: Promise<SessionFinished>;
  /** True when the feed replays from the session's start (JetStream); false when it only sees what happens from now on. */
  readonly replayable: boolean;
  /**
   * Resolves once the feed has stopped (the session finished, or {@link stop}) and has let go of
   * what it held on the server: its JetStream consumer is deleted, or its subscription ended.
   * Never rejects; a consumer the server could not be asked to delete expires on its own.
   */
  readonly closed: Promise<void>;
  /** Stops following: `events` ends after what is already buffered. Safe to call more than once. */
  stop(): void;
}

/**
 * Follows a session's events from its first: an ordered JetStream consumer on the events stream of
 * the session's deployment (`namespace`, `troupe` when absent), so a late client replays what it
 * missed and keeps following across orchestrator crashes. Events re-published after a resume carry
 * sequence numbers already seen and are skipped. Without JetStream it falls back to a core
 * subscription, which sees only what happens from now on.
 */
export async function followSessionEvents(
  nc: NatsConnection,
  sessionId: string,
  options: { onInvalidEvent?: (error: string) => void; namespace?: string } = {},
): Promise<SessionEventFeed> {
  const names = wireNames(options.namespace);
  const buffered: SessionEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let nextSeq = 0;
  let resolveFinished!: (event: SessionFinished) => void;
  const finished = new Promise<SessionFinished>((resolve) => (resolveFinished = resolve));
  let stopSource = () => {};
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));

  const receive = (data: Uint8Array) => {
    if (ended) return;
    const decoded = decodeWireMessage(SessionEvent, data, 'A session event');
    if (!decoded.ok) {
      options.onInvalidEvent?.(decoded.error);
      return;
    }
    const event = decoded.value;
    if (event.seq < nextSeq) return;
    nextSeq = event.seq + 1;
    buffered.push(event);
    if (event.type === 'session.finished') {
      ended = true;
      resolveFinished(event);
      stopSource();
    }
    wake?.();
  };

  let replayable = true;
  try {
    const consumer = await jetstream(nc).consumers.get(names.streams.sessionEvents, {
      filter_subjects: names.subjects.sessionEvents(sessionId),
      deliver_policy: 'all',
    });
    const messages: ConsumerMessages = await consumer.consume();
    // Stopping alone leaves the consumer on the server for its 5-minute inactivity threshold: one
    // per session ever followed, in the thousands on a busy deployment. Deleted as soon as it ends.
    stopSource = once(() => {
      void messages.stop();
      void consumer.delete().catch(() => false).then(() => resolveClosed());
    });
    void (async () => {
      for await (const msg of messages) receive(msg.data);
    })();
  } catch {
    replayable = false;
    const subscription: Subscription = nc.subscribe(names.subjects.sessionEvents(sessionId), { callback: (_error, msg) => receive(msg.data) });
    stopSource = once(() => {
      subscription.unsubscribe();
      resolveClosed();
    });
    await nc.flush();
  }

  async function* events(): AsyncGenerator<SessionEvent> {
    for (;;) {
      const next = buffered.shift();
      if (next) {
        yield next;
        if (next.type === 'session.finished') return;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }

  return {
    events: events(),
    finished,
    replayable,
    closed,
    stop() {
      ended = true;
      stopSource();
      wake?.();
    },
  };
}

function once(action: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    action();
  };
}
