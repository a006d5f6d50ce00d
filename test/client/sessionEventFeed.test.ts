import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { followSessionEvents } from '../../client/sessionEventFeed.ts';
import type { SessionEventBody } from '../../transport/messages.ts';
import { ensureStreams } from '../../transport/streams.ts';
import { testWireNames } from '../fixtures/testNamespace.ts';

const names = testWireNames();

const finishedBody: SessionEventBody = {
  type: 'session.finished', status: 'completed', output: 'done', stopReason: 'answered',
  steps: 1, toolCalls: 0, usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, traceId: 'trace-1', durationMs: 1,
};

describe('followSessionEvents', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    nc = await connect({ servers: inject('natsUrl'), name: 'session-event-feed' });
    await ensureStreams(nc, names);
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await nc.close();
  });

  const emit = (sessionId: string, seq: number, body: SessionEventBody) =>
    nc.publish(names.subjects.sessionEvents(sessionId), JSON.stringify({ ...body, sessionId, seq, at: new Date(0).toISOString() }));

  /** The consumers on the events stream that follow `sessionId`. */
  const consumersOf = async (sessionId: string) => {
    const subject = names.subjects.sessionEvents(sessionId);
    const found: string[] = [];
    for await (const info of jsm.consumers.list(names.streams.sessionEvents)) {
      if (info.config.filter_subject === subject || info.config.filter_subjects?.includes(subject)) found.push(info.name);
    }
    return found;
  };

  // Regression: each feed's ordered consumer stayed on the server for five minutes after its session
  // ended, so a client following sessions at 45/s kept ~13,500 of them there (found by the bench's soak).
  it('deletes its consumer from the server once the session has finished', async () => {
    const feed = await followSessionEvents(nc, 'feed-finished', { namespace: names.namespace });
    expect(feed.replayable).toBe(true);
    expect(await consumersOf('feed-finished')).toHaveLength(1);
    emit('feed-finished', 0, { type: 'turn.started', turn: 1 });
    emit('feed-finished', 1, finishedBody);
    expect((await feed.finished).status).toBe('completed');
    await feed.closed;
    expect(await consumersOf('feed-finished')).toEqual([]);
  });

  it('deletes its consumer when the client stops following before the session ends', async () => {
    const feed = await followSessionEvents(nc, 'feed-detached', { namespace: names.namespace });
    expect(await consumersOf('feed-detached')).toHaveLength(1);
    feed.stop();
    feed.stop();
    await feed.closed;
    expect(await consumersOf('feed-detached')).toEqual([]);
  });
});
