import { DeliverPolicy, jetstream, type Consumer, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeSessionEvents, type SessionEvent, type SessionFinished } from '../transport/messages.ts';
import { wireNames } from '../transport/subjects.ts';

/** How long one pull for events waits on the server; an idle feed renews it this often. */
const feedPullExpiresMs = 5_000;
/** Silence after which a feed's consumer is taken for dead (its server lost) and replaced. */
const feedSilenceMs = 3 * feedPullExpiresMs;

interface Followed {
  readonly consumer: Consumer;
  readonly messages: ConsumerMessages;
}

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
  options: {
    onInvalidEvent?: (error: string) => void;
    namespace?: string;
    /** Go on past an escalation (a park until a person answers) to what the session does after it: the feed ends at a final state only. */
    throughEscalations?: boolean;
  } = {},
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
    const decoded = decodeSessionEvents(data, 'A session event');
    for (const error of decoded.errors) options.onInvalidEvent?.(error);
    for (const event of decoded.events) {
      if (ended) break;
      if (event.seq < nextSeq) continue;
      nextSeq = event.seq + 1;
      buffered.push(event);
      if (event.type === 'session.finished' && !(options.throughEscalations && event.status === 'escalated')) {
        ended = true;
        resolveFinished(event);
        stopSource();
      }
    }
    wake?.();
  };

  let replayable = true;
  try {
    const js = jetstream(nc);
    let lastStreamSeq = 0;
    let lastActivity = Date.now();
    const follow = async (): Promise<Followed> => {
      const consumer = await js.consumers.get(names.streams.sessionEvents, {
        filter_subjects: names.subjects.sessionEvents(sessionId),
        // After a re-follow, from the first event not yet received: nothing is read twice or skipped.
        ...(lastStreamSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastStreamSeq + 1 } : { deliver_policy: DeliverPolicy.All }),
      });
      return { consumer, messages: await consumer.consume({ expires: feedPullExpiresMs }) };
    };
    const read = ({ messages }: Followed): void => {
      lastActivity = Date.now();
      void (async () => {
        for await (const status of messages.status()) if (status.type === 'next') lastActivity = Date.now();
      })();
      void (async () => {
        for await (const msg of messages) {
          lastActivity = Date.now();
          lastStreamSeq = msg.seq;
          receive(msg.data);
        }
      })();
    };
    // Stopping alone leaves a consumer on the server for its 5-minute inactivity threshold: one
    // per session ever followed, in the thousands on a busy deployment. Deleted as soon as it ends.
    const release = async ({ consumer, messages }: Followed): Promise<void> => {
      void messages.stop();
      await consumer.delete().catch(() => false);
    };
    let current: Followed | undefined = await follow();
    let refollowing: Promise<void> | undefined;
    // An ordered consumer lives on one server. When that server dies (a cluster node lost), nats.js
    // keeps asking the dead consumer for its info and never makes another, so the feed would wait
    // for the server to come back. Silence for a few pull periods (no event, no new pull) means
    // that: follow again with a new consumer, which the cluster places on a live server.
    const watchdog = setInterval(() => {
      if (ended || refollowing || Date.now() - lastActivity < feedSilenceMs) return;
      const dead = current;
      current = undefined;
      if (dead) void release(dead);
      refollowing = (async () => {
        while (!ended) {
          try {
            const followed = await follow();
            if (ended) {
              await release(followed);
              return;
            }
            current = followed;
            read(followed);
            return;
          } catch {
            await new Promise((r) => setTimeout(r, feedPullExpiresMs / 5));
          }
        }
      })().finally(() => (refollowing = undefined));
    }, feedPullExpiresMs);
    watchdog.unref();
    stopSource = once(() => {
      clearInterval(watchdog);
      const followed = current;
      current = undefined;
      void Promise.all([followed ? release(followed) : undefined, refollowing]).then(() => resolveClosed());
    });
    read(current);
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
