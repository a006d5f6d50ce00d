import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { followSessionEvents } from '../../client/sessionEventFeed.ts';
import { startNatsCluster, type NatsCluster } from '../../testing/natsCluster.ts';
import type { SessionEvent, SessionEventBody } from '../../transport/messages.ts';
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

describe('followSessionEvents on a cluster', () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;

  beforeAll(async () => {
    cluster = await startNatsCluster({ name: 'feed-test' });
    nc = await connect({ servers: [...cluster.urls], name: 'session-event-feed', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await ensureStreams(nc, names);
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  /** Stores an event, retrying until the stream acknowledges it (its leader may be being elected). */
  const store = async (sessionId: string, seq: number, body: SessionEventBody) => {
    const event = JSON.stringify({ ...body, sessionId, seq, at: new Date(0).toISOString() });
    for (;;) {
      const ack = await jetstream(nc).publish(names.subjects.sessionEvents(sessionId), event, { msgID: `${sessionId}-${seq}`, timeout: 2_000 }).catch(() => undefined);
      if (ack) return;
    }
  };

  // Regression: nats.js keeps asking a consumer whose server died for its info and never makes another,
  // so a client whose feed's consumer lived on a killed cluster node waited until the node came back.
  it('follows on, missing nothing and repeating nothing, when the server holding its consumer is killed', async () => {
    const sessionId = 'feed-node-lost';
    const feed = await followSessionEvents(nc, sessionId, { namespace: names.namespace });
    const received: SessionEvent[] = [];
    const reading = (async () => {
      for await (const event of feed.events) received.push(event);
    })();
    await store(sessionId, 0, { type: 'turn.started', turn: 1 });
    const jsm = await jetstreamManager(nc);
    let holder: string | undefined;
    for await (const info of jsm.consumers.list(names.streams.sessionEvents)) {
      if (info.config.filter_subject === names.subjects.sessionEvents(sessionId) || info.config.filter_subjects?.includes(names.subjects.sessionEvents(sessionId))) holder = info.cluster?.leader;
    }
    const victim = cluster.nodes.find((n) => n.name === holder);
    if (!victim) throw new Error(`no server holds the feed's consumer (${holder})`);
    await victim.kill();
    await store(sessionId, 1, { type: 'turn.started', turn: 2 });
    await store(sessionId, 2, finishedBody);
    expect((await feed.finished).status).toBe('completed');
    await reading;
    expect(received.map((e) => [e.seq, e.type])).toEqual([[0, 'turn.started'], [1, 'turn.started'], [2, 'session.finished']]);
    await feed.closed;
    await victim.restart();
  }, 90_000);
});
