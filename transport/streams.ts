import { jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { jetStreamReplicas } from './jetStreamReplicas.ts';
import { decodeSessionEvents, type SessionEvent } from './messages.ts';
import type { WireNames } from './subjects.ts';

const week = 7 * 24 * 60 * 60 * 1000;

/**
 * Creates the streams of the deployment `names` belongs to if they are missing; safe to call from
 * every process, any number of times. Core-NATS publishes on the captured subjects are stored
 * without the publisher waiting for an acknowledgement, so sessions pay nothing per event for
 * durability.
 */
export async function ensureStreams(nc: NatsConnection, names: WireNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const wanted = [
    {
      name: names.streams.sessionEvents,
      subjects: [names.subjects.allSessionEvents],
      retention: RetentionPolicy.Limits,
      max_age: nanos(week),
      duplicate_window: nanos(2 * 60 * 1000),
    },
    {
      // A command is kept as long as its session can be resumed; the same command id sent again within ten minutes is stored once.
      name: names.streams.sessionControls,
      subjects: [names.subjects.allSessionControls],
      retention: RetentionPolicy.Limits,
      max_age: nanos(week),
      duplicate_window: nanos(10 * 60 * 1000),
    },
    {
      name: names.streams.queuedStarts,
      subjects: [names.subjects.queuedSessionStarts],
      retention: RetentionPolicy.Workqueue,
      max_age: nanos(week),
      duplicate_window: nanos(10 * 60 * 1000),
    },
  ];
  for (const config of wanted) {
    try {
      await jsm.streams.info(config.name);
    } catch {
      try {
        await jsm.streams.add({ ...config, storage: StorageType.File, discard: DiscardPolicy.Old, num_replicas: jetStreamReplicas(nc) });
      } catch (error) {
        // Another process created it in between: that is the state we wanted.
        await jsm.streams.info(config.name).catch(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * The last event the events stream stored for a session: 'none' when it stored none, undefined when
 * that cannot be told (no stream, JetStream unreachable, a malformed last event).
 */
export async function lastStoredSessionEvent(nc: NatsConnection, names: WireNames, sessionId: string): Promise<SessionEvent | 'none' | undefined> {
  try {
    const message = await (await jetstreamManager(nc, { checkAPI: false })).streams.getMessage(names.streams.sessionEvents, { last_by_subj: names.subjects.sessionEvents(sessionId) });
    if (!message) return 'none';
    // A batch's last event is the session's last; a malformed one leaves it untold.
    const decoded = decodeSessionEvents(message.data, 'The last stored session event');
    return decoded.errors.length === 0 ? decoded.events.at(-1) : undefined;
  } catch (error) {
    return /no message found/i.test(String(error)) ? 'none' : undefined;
  }
}
