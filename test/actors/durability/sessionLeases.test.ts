import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionLeases } from '../../../actors/durability/sessionLeases.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

describe('SessionLeases.orphans', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let leases: SessionLeases;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    leases = await SessionLeases.open(nc, testWireNames(), { ttlMs: 60_000 });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('lists expired and released leases, not live or ended ones', async () => {
    await (await leases.acquire('s-live', 'me'))?.renew();
    await (await leases.acquire('s-released', 'me'))?.release();
    await leases.acquire('s-ended', 'me');
    await leases.end('s-ended');
    expect(await leases.orphans()).toEqual(['s-released']);
  });

  // Regression (the bench's soak): a KV purge left a marker per ended session in a bucket with no age
  // limit, and every resume scan read each key's last entry, so scans read every session ever run.
  it('leaves nothing of an ended session in the bucket', async () => {
    const ended = await SessionLeases.open(nc, testWireNames(), { bucket: 'ended_leases', ttlMs: 60_000 });
    const bucket = await new Kvm(nc).open('ended_leases');
    for (const sessionId of ['s-1', 's-2', 's-3']) {
      await (await ended.acquire(sessionId, 'me'))?.renew();
      await ended.end(sessionId);
    }
    expect((await bucket.status()).values).toBe(0);
    expect(await ended.orphans()).toEqual([]);
    // The id stays usable as before: a start that finds no lease takes one (the checkpoint then says whether the id was used).
    expect(await ended.acquire('s-1', 'other')).toBeDefined();
  });

  // Regression (wire fuzzing): orphans() listed keys with kv.keys(), which ends only once nothing is
  // pending; while other sessions kept renewing their leases it never ended, so the resumer's scan
  // hung and no crashed session was ever resumed again.
  it('returns while other sessions keep renewing and ending their leases', async () => {
    const expired = await leases.acquire('s-orphan', 'gone');
    await expired?.release();
    // Other orchestrators at work: sessions starting, renewing and ending, all the time.
    const bucket = await new Kvm(nc).open(testWireNames().buckets.leases);
    let busy = true;
    const churn = [1, 2, 3].map(async (worker) => {
      for (let i = 0; busy; i++) {
        const key = `s-busy-${worker}-${i}`;
        await bucket.put(key, JSON.stringify({ owner: 'other', expiresAt: Date.now() + 60_000 }));
        await bucket.purge(key);
      }
    });
    try {
      for (let round = 0; round < 60; round++) {
        const listed = await Promise.race([
          leases.orphans(),
          new Promise<'still listing after 3 s'>((resolve) => setTimeout(() => resolve('still listing after 3 s'), 3_000).unref()),
        ]);
        expect(listed).toContain('s-orphan');
      }
    } finally {
      busy = false;
      await Promise.all(churn);
    }
  });
});
