import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { followSessionEvents } from '../../client/sessionEventFeed.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { SessionStreamMessage } from '../consoleApi.ts';
import type { EventStreamResponse } from './consoleHttp.ts';
import { sessionDetailOf, stateIdOfEvent } from './sessionViews.ts';
import type { DrawnMachine } from './statechartGraph.ts';

export interface SessionStreamDeps {
  nc: NatsConnection;
  names: WireNames;
  logger: Logger;
  /** The session statechart the console draws. */
  machine: DrawnMachine;
  jaegerUrl: string | null;
}

/**
 * One session, live, for as long as the page keeps the stream open: its detail from its checkpoint
 * (now, then on every change), and its events from the first (replayed from JetStream for a page
 * that opens late). A session that parks (escalated) ends one event feed and goes on in a new one
 * after it resumes; events already sent are not sent twice.
 */
export async function streamSession(sessionId: string, stream: EventStreamResponse, deps: SessionStreamDeps): Promise<void> {
  const send = (message: SessionStreamMessage): boolean => stream.send(message.kind, message);
  const store = await CheckpointStore.openForReading(deps.nc, deps.names);
  let stopped = false;
  void stream.closed.then(() => (stopped = true));

  // The detail, read again (with its journal: the ledger) whenever the checkpoint changes.
  let reading: Promise<void> | undefined;
  let again = false;
  const readDetail = () => {
    if (reading) {
      again = true;
      return;
    }
    reading = (async () => {
      do {
        again = false;
        try {
          const stored = await store?.read(sessionId);
          if (stored) {
            send({ kind: 'detail', detail: sessionDetailOf(stored.checkpoint, deps) });
          }
        } catch (error) {
          send({ kind: 'notice', level: 'warning', message: `The session's checkpoint could not be read: ${(error as Error).message}` });
        }
      } while (again && !stopped);
      reading = undefined;
    })();
  };
  const watch = await store?.watch(() => readDetail(), {
    sessionId,
    onEnd: () => send({ kind: 'notice', level: 'warning', message: 'The console stopped hearing of this session\'s checkpoints: reload the page to follow it again.' }),
  });
  readDetail();

  try {
    // Past escalations: a parked session's page keeps following what it does once answered.
    const feed = await followSessionEvents(deps.nc, sessionId, {
      namespace: deps.names.namespace,
      throughEscalations: true,
      onInvalidEvent: (error) => send({ kind: 'notice', level: 'warning', message: `An event of this session could not be read: ${error}` }),
    });
    void stream.closed.then(() => feed.stop());
    if (!feed.replayable) send({ kind: 'notice', level: 'info', message: 'This deployment keeps no event history (no JetStream): the timeline starts now.' });
    for await (const event of feed.events) {
      // A page slower than the session (or a long replay) is waited for: the feed's consumer waits with it.
      if (!send({ kind: 'event', event: event as unknown as Record<string, unknown>, stateId: stateIdOfEvent(deps.machine.id, event) })) await stream.drained();
    }
  } catch (error) {
    deps.logger.warn({ sessionId, err: error }, 'following a session for the console failed');
    send({ kind: 'notice', level: 'error', message: `Following this session's events failed: ${(error as Error).message}. Reload to try again.` });
  }
  await stream.closed;
  watch?.stop();
}
