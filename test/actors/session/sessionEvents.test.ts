import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { noUsage } from '../../../machines/usage.ts';
import { decodeSessionEvents } from '../../../transport/messages.ts';
import { ensureStreams } from '../../../transport/streams.ts';
import { wireNames } from '../../../transport/subjects.ts';
import { natsPerSuite } from '../../fixtures/natsPerSuite.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

const finished = {
  type: 'session.finished' as const, status: 'completed' as const, output: 'done', stopReason: 'answered',
  steps: 1, toolCalls: 0, usage: noUsage, traceId: 't', durationMs: 1,
};

describe('SessionEventPublisher.publishDurably', () => {
  const nats = natsPerSuite();

  it('publishes the end once, acknowledged by the events stream, to live watchers and replays alike', async () => {
    const names = testWireNames();
    await ensureStreams(nats.nc, names);
    const live: unknown[] = [];
    const subscription = nats.nc.subscribe(names.subjects.sessionEvents('s-1'), { callback: (_e, msg) => void live.push(msg.json()) });
    const { event, stored } = new SessionEventPublisher(nats.nc, names, 's-1', silentLogger(), 4).publishDurably(finished);
    expect(event).toMatchObject({ type: 'session.finished', seq: 4, sessionId: 's-1' });
    expect(await stored).toBe(true);
    await nats.nc.flush();
    expect(live).toEqual([event]);
    const kept = await (await jetstreamManager(nats.nc)).streams.getMessage(names.streams.sessionEvents, { last_by_subj: names.subjects.sessionEvents('s-1') });
    expect(kept?.json()).toEqual(event);
    subscription.unsubscribe();
  });

  it('publishes it once to live watchers when no stream captures the session’s events, and says it was not stored', async () => {
    const names = wireNames(`${testWireNames().namespace}-bare`);
    const live: unknown[] = [];
    const subscription = nats.nc.subscribe(names.subjects.sessionEvents('s-2'), { callback: (_e, msg) => void live.push(msg.json()) });
    const { event, stored } = new SessionEventPublisher(nats.nc, names, 's-2', silentLogger()).publishDurably(finished);
    expect(await stored).toBe(false);
    await nats.nc.flush();
    expect(live).toEqual([event]);
    subscription.unsubscribe();
  });
});

describe('SessionEventPublisher.publish', () => {
  const nats = natsPerSuite();

  it('sends the events of one moment as one message, in order, and what came before the end before the end', async () => {
    const names = testWireNames();
    const messages: unknown[] = [];
    const subscription = nats.nc.subscribe(names.subjects.sessionEvents('s-batch'), { callback: (_e, msg) => void messages.push(msg.json()) });
    const publisher = new SessionEventPublisher(nats.nc, names, 's-batch', silentLogger());
    const turn = publisher.publish({ type: 'turn.started', turn: 1 });
    const started = publisher.publish({ type: 'tool.call.started', turn: 1, callId: 'c1', tool: 'calc_evaluate', arguments: { expression: '1 + 1' } });
    expect([turn.seq, started.seq]).toEqual([0, 1]);
    await new Promise((resolve) => setImmediate(resolve));
    const later = publisher.publish({ type: 'turn.started', turn: 2 });
    const { event: end } = publisher.publishDurably(finished);
    await nats.nc.flush();
    expect(messages).toEqual([[turn, started], later, end]);
    subscription.unsubscribe();
  });
});

describe('decodeSessionEvents', () => {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const event = (seq: number) => ({ type: 'turn.started', turn: 1, sessionId: 's', seq, at: new Date(0).toISOString() });

  it('reads one event, or a batch of them in order', () => {
    expect(decodeSessionEvents(encode(event(0)), 'an event')).toEqual({ events: [event(0)], errors: [] });
    expect(decodeSessionEvents(encode([event(0), event(1)]), 'an event')).toEqual({ events: [event(0), event(1)], errors: [] });
  });

  it('keeps the sound events of a batch with a malformed one, and names the one it refused', () => {
    const decoded = decodeSessionEvents(encode([event(0), { type: 'turn.started', turn: 'one' }, event(2)]), 'an event');
    expect(decoded.events).toEqual([event(0), event(2)]);
    expect(decoded.errors).toEqual([expect.stringMatching(/^an event \(item 1 of a batch\) is malformed: /)]);
    expect(decodeSessionEvents(new TextEncoder().encode('{nope'), 'an event').errors).toEqual([expect.stringMatching(/^an event is not valid JSON/)]);
  });
});
