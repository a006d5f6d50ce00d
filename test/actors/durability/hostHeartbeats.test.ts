import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { HostHeartbeats } from '../../../actors/durability/hostHeartbeats.ts';
import { SessionLeases } from '../../../actors/durability/sessionLeases.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { natsPerSuite } from '../../fixtures/natsPerSuite.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

/**
 * A process's heartbeat, which the leases of its sessions point to: a host that dies frees all its
 * sessions when its heartbeat lapses, and its sessions write nothing to stay its own.
 */
describe('HostHeartbeats', () => {
  const nats = natsPerSuite();
  const names = testWireNames();
  const ttlMs = 600;

  it('keeps a host\'s sessions its own while it beats, with no write per session, and frees them all once its beats stop', async () => {
    const hosts = await HostHeartbeats.open(nats.nc, names, { ttlMs });
    const leases = await SessionLeases.open(nats.nc, names, { hosts, ttlMs: 1_000 });
    // The host on a connection of its own, which dies with it.
    const hostNc = await connect({ servers: nats.server.url });
    const hostSide = await HostHeartbeats.open(hostNc, names, { ttlMs });
    const host = await hostSide.start('host-a:1:x', silentLogger(), () => {});
    const bucket = await new Kvm(nats.nc).open(names.buckets.leases);
    for (const id of ['s-1', 's-2']) expect(await leases.acquire(id, host.owner)).toBeDefined();
    const written = (await bucket.status()).values;
    expect(await hosts.isAlive(host.owner)).toBe(true);
    // Past the leases' own TTL: they hold because their host beats, and nothing was written for them.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await leases.orphans()).toEqual([]);
    expect(await leases.acquire('s-1', 'host-b:2:y')).toBeUndefined();
    expect((await bucket.status()).values).toBe(written);
    expect(host.alive()).toBe(true);

    const deaths: string[] = [];
    hosts.watchDeaths((owner) => deaths.push(owner));
    // Killed: its connection goes, and no beat with it.
    hostSide.stop();
    await hostNc.close();
    await expect.poll(() => deaths, { timeout: 5_000 }).toEqual([host.owner]);
    expect((await leases.orphans()).sort()).toEqual(['s-1', 's-2']);
    expect(await leases.acquire('s-1', 'host-b:2:y')).toBeDefined();
    hosts.stop();
  });

  it('tells a host that another process took for dead that it is buried: it may no longer act for its sessions', async () => {
    const hosts = await HostHeartbeats.open(nats.nc, names, { ttlMs });
    let buried = 0;
    const host = await hosts.start('host-c:3:z', silentLogger(), () => buried++);
    expect(await hosts.isAlive(host.owner)).toBe(true);
    // What a process that saw its heartbeat lapse does: it removes the entry.
    await (await new Kvm(nats.nc).open(names.buckets.hosts)).delete('host-c_3_z');
    await expect.poll(() => buried, { timeout: 5_000 }).toBe(1);
    expect(host.alive()).toBe(false);
    hosts.stop();
  });

  it('reads a host it has not seen from the bucket before counting it gone, and counts a host gone once its entry is removed', async () => {
    const hosts = await HostHeartbeats.open(nats.nc, names, { ttlMs });
    // A record written behind the watcher's back, as one a stalled watcher has not delivered yet.
    const bucket = await new Kvm(nats.nc).open(names.buckets.hosts);
    await bucket.put('host-d_4_w', JSON.stringify({ owner: 'host-d:4:w', expiresAt: Date.now() + 60_000 }));
    expect(await hosts.isAlive('host-d:4:w')).toBe(true);
    expect(await hosts.isAlive('host-e:5:never')).toBe(false);
    await bucket.delete('host-d_4_w');
    await expect.poll(() => hosts.isAlive('host-d:4:w'), { timeout: 5_000 }).toBe(false);
    hosts.stop();
  });
});
