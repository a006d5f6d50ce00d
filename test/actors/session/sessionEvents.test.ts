import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { noUsage } from '../../../machines/usage.ts';
import { ensureStreams } from '../../../transport/streams.ts';
import { wireNames } from '../../../transport/subjects.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

const finished = {
  type: 'session.finished' as const, status: 'completed' as const, output: 'done', stopReason: 'answered',
  steps: 1, toolCalls: 0, usage: noUsage, traceId: 't', durationMs: 1,
};

describe('SessionEventPublisher.publishDurably', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('publishes the end once, acknowledged by the events stream, to live watchers and replays alike', async () => {
    const names = testWireNames();
    await ensureStreams(nc, names);
    const live: unknown[] = [];
    const subscription = nc.subscribe(names.subjects.sessionEvents('s-1'), { callback: (_e, msg) => void live.push(msg.json()) });
    const { event, stored } = new SessionEventPublisher(nc, names, 's-1', silentLogger(), 4).publishDurably(finished);
    expect(event).toMatchObject({ type: 'session.finished', seq: 4, sessionId: 's-1' });
    expect(await stored).toBe(true);
    await nc.flush();
    expect(live).toEqual([event]);
    const kept = await (await jetstreamManager(nc)).streams.getMessage(names.streams.sessionEvents, { last_by_subj: names.subjects.sessionEvents('s-1') });
    expect(kept?.json()).toEqual(event);
    subscription.unsubscribe();
  });

  it('publishes it once to live watchers when no stream captures the session’s events, and says it was not stored', async () => {
    const names = wireNames(`${testWireNames().namespace}-bare`);
    const live: unknown[] = [];
    const subscription = nc.subscribe(names.subjects.sessionEvents('s-2'), { callback: (_e, msg) => void live.push(msg.json()) });
    const { event, stored } = new SessionEventPublisher(nc, names, 's-2', silentLogger()).publishDurably(finished);
    expect(await stored).toBe(false);
    await nc.flush();
    expect(live).toEqual([event]);
    subscription.unsubscribe();
  });
});
