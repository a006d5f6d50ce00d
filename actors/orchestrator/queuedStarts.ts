import { AckPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import { nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ensureStreams } from '../../transport/streams.ts';
import type { WireNames } from '../../transport/subjects.ts';

const maxDeliveries = 5;
// Four of these outlast a default lease (6 s) and a resume scan: a start whose orchestrator died unaccepted is taken by then.
const laterDelayMs = 3_000;

/**
 * Takes the deployment's session starts that were queued while no orchestrator ran, one
 * orchestrator each (a work queue with one durable consumer shared by all of them). Each start is
 * acknowledged once it is accepted (stored) or refused. Resolves undefined when JetStream is not available.
 */
export async function takeQueuedStarts(
  nc: NatsConnection,
  names: WireNames,
  logger: Logger,
  /** `later`: not now (another orchestrator holds the session id unaccepted); delivered again shortly. */
  take: (data: Uint8Array, headers: MsgHdrs | undefined) => Promise<'taken' | 'later'>,
): Promise<{ close(): Promise<void> } | undefined> {
  let messages: ConsumerMessages;
  try {
    await ensureStreams(nc, names);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(names.streams.queuedStarts, {
      durable_name: names.consumers.queuedStarts,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
      max_deliver: maxDeliveries,
    });
    const consumer = await jetstream(nc).consumers.get(names.streams.queuedStarts, names.consumers.queuedStarts);
    messages = await consumer.consume({ max_messages: 16 });
  } catch (error) {
    logger.warn({ err: error }, 'JetStream is unavailable: starts are not queued while no orchestrator runs, and events are not replayable');
    return undefined;
  }
  const loop = (async () => {
    for await (const msg of messages) {
      let taken: 'taken' | 'later' = 'taken';
      try {
        taken = await take(msg.data, msg.headers);
      } catch (error) {
        logger.error({ err: error }, 'could not take a queued start');
      }
      if (taken === 'later' && msg.info.deliveryCount < maxDeliveries) {
        msg.nak(laterDelayMs);
        continue;
      }
      if (taken === 'later') logger.error({ deliveries: msg.info.deliveryCount }, 'gave up on a queued start another orchestrator held and never accepted');
      msg.ack();
    }
  })();
  return {
    async close() {
      await messages.close();
      await loop;
    },
  };
}
