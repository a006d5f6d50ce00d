import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, NoRespondersError, RequestError, TimeoutError } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { isNoResponders } from '../../transport/natsConnection.ts';
import { withLeanRequests } from '../../transport/requestMux.ts';
import { startNatsServer } from '../../testing/natsServer.ts';
import { natsPerSuite } from '../fixtures/natsPerSuite.ts';

describe('withLeanRequests', () => {
  const nats = natsPerSuite();

  it('answers each of many concurrent requests with its own reply', async () => {
    const nc = withLeanRequests(nats.nc);
    const echo = nats.nc.subscribe('lean.echo', { callback: (_error, msg) => void setTimeout(() => msg.respond(msg.data), Math.random() * 20) });
    await nats.nc.flush();
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => nc.request('lean.echo', `n${i}`, { timeout: 5_000 })));
    expect(replies.map((m) => m.string())).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    echo.unsubscribe();
  });

  it('fails as nats.js does: no responders as a RequestError caused by NoRespondersError, a silent responder as a TimeoutError', async () => {
    const nc = withLeanRequests(nats.nc);
    const unanswered = await nc.request('lean.nobody', 'x', { timeout: 5_000 }).catch((error: unknown) => error);
    expect(unanswered).toBeInstanceOf(RequestError);
    expect((unanswered as RequestError).cause).toBeInstanceOf(NoRespondersError);
    expect(isNoResponders(unanswered)).toBe(true);
    const silent = nats.nc.subscribe('lean.silent', { callback: () => undefined });
    await nats.nc.flush();
    await expect(nc.request('lean.silent', 'x', { timeout: 50 })).rejects.toBeInstanceOf(TimeoutError);
    silent.unsubscribe();
  });

  it('carries JetStream: publishes are acknowledged, and a stream-less subject reads as JetStream not answering', async () => {
    const nc = withLeanRequests(nats.nc);
    await (await jetstreamManager(nc)).streams.add({ name: 'LEAN', subjects: ['lean.stored'] });
    const ack = await jetstream(nc).publish('lean.stored', 'kept');
    expect(ack).toMatchObject({ stream: 'LEAN', seq: 1 });
    await expect(jetstream(nc).publish('lean.unstored', 'lost', { timeout: 2_000 })).rejects.toThrow(/jetstream is not enabled|no responders/i);
  });

  it('fails a request the server refuses to publish at once, not at its timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lean-'));
    const config = join(dir, 'server.conf');
    writeFileSync(config, 'authorization { users = [ { user: "u", password: "p", permissions: { publish: { allow: ["allowed.>"] }, subscribe: { allow: ["_INBOX.>"] } } } ] }\n');
    const server = await startNatsServer({ config });
    const raw = await connect({ servers: server.url, user: 'u', pass: 'p' });
    try {
      const nc = withLeanRequests(raw);
      const started = Date.now();
      const refused = await nc.request('forbidden.subject', 'x', { timeout: 20_000 }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RequestError);
      expect(String((refused as Error).message)).toMatch(/permissions violation/i);
      // Long before the 20 s timeout: the refusal, not the clock, ended it.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await raw.close();
      await server.stop();
    }
  });

  it('rejects what is pending when the connection closes', async () => {
    const raw = await connect({ servers: nats.server.url });
    const nc = withLeanRequests(raw);
    const silent = nats.nc.subscribe('lean.closing', { callback: () => undefined });
    await nats.nc.flush();
    const pending = nc.request('lean.closing', 'x', { timeout: 30_000 });
    await raw.flush();
    await raw.close();
    await expect(pending).rejects.toThrow(/connection closed/);
    silent.unsubscribe();
  });
});
