import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { checkpointSchemaVersion, type Checkpoint } from '../../../actors/durability/checkpointStore.ts';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { publishStoredEnd } from '../../../actors/session/storedEnd.ts';
import { sessionMachine } from '../../../machines/session.ts';
import { noUsage } from '../../../machines/usage.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { ensureStreams } from '../../../transport/streams.ts';
import { decodeSessionEvents } from '../../../transport/messages.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { sessionInput } from '../../fixtures/sessionFakes.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

/** The last checkpoint of a session that completed, as its host stores it before publishing the end. */
function endedCheckpoint(sessionId: string, nextEventSeq: number): Checkpoint {
  const snapshot = structuredClone(createActor(sessionMachine, { input: sessionInput({}, { sessionId }) }).getPersistedSnapshot()) as Record<string, unknown>;
  Object.assign(snapshot.context as Record<string, unknown>, { outcome: { status: 'completed', stopReason: 'answered', output: 'the sum is 4' }, turn: 2 });
  return {
    schemaVersion: checkpointSchemaVersion, sessionId, agent: 'assistant', task: 'Add two numbers.', status: 'ended', snapshot,
    nextEventSeq, traceContext: {}, wallClockDeadline: Date.now() + 60_000, inFlightToolCalls: [], owner: 'gone', updatedAt: new Date().toISOString(), appliedControls: [],
  };
}

const parkedEnd = {
  type: 'session.finished' as const, status: 'escalated' as const, output: null, stopReason: 'escalated: needs a person',
  steps: 1, toolCalls: 0, usage: noUsage, traceId: 't', durationMs: 1,
};

// Regression (chaos run with a NATS server killed): a host died after storing its session's ended
// checkpoint and before the events stream stored `session.finished`; the resumer saw "ended" and
// only removed the lease, and the client waited for the end forever.
describe('publishStoredEnd', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  const names = testWireNames();
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await ensureStreams(nc, names);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const lastStored = async (sessionId: string) => {
    const message = await (await jetstreamManager(nc)).streams.getMessage(names.streams.sessionEvents, { last_by_subj: names.subjects.sessionEvents(sessionId) });
    return message ? decodeSessionEvents(message.data, 'the last event').events.at(-1) : undefined;
  };

  it('publishes the end the checkpoint stands for, numbered past what the stream has, when the stream lacks it', async () => {
    const publisher = new SessionEventPublisher(nc, names, 's-cut', silentLogger(), 0);
    publisher.publish({ type: 'turn.started', turn: 1 } as never);
    // Parked once, answered, then ended: the escalation's end is not the session's.
    await publisher.publishDurably(parkedEnd).stored;
    await publishStoredEnd(nc, names, endedCheckpoint('s-cut', 1), silentLogger());
    expect(await lastStored('s-cut')).toMatchObject({ type: 'session.finished', status: 'completed', output: 'the sum is 4', seq: 2, steps: 2 });
  });

  it('publishes nothing when the stream already ends the session', async () => {
    const publisher = new SessionEventPublisher(nc, names, 's-whole', silentLogger(), 0);
    await publisher.publishDurably({ ...parkedEnd, status: 'completed', output: 'the sum is 4', stopReason: 'answered' }).stored;
    await publishStoredEnd(nc, names, endedCheckpoint('s-whole', 1), silentLogger());
    expect(await lastStored('s-whole')).toMatchObject({ seq: 0, status: 'completed' });
  });
});
