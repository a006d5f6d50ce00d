import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, type NatsCluster } from '../../testing/natsCluster.ts';
import { jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('startNatsCluster', () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  const stream = `${testNamespace().toUpperCase().replace(/-/g, '_')}_PROBE`;

  beforeAll(async () => {
    cluster = await startNatsCluster({ name: 'natscluster-test' });
    nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it('starts three named servers on loopback that every client learns about, so Troupe picks three replicas', () => {
    expect(cluster.nodes.map((n) => n.name)).toEqual(['natscluster-test-n1', 'natscluster-test-n2', 'natscluster-test-n3']);
    expect(cluster.servers).toBe(cluster.urls.join(','));
    for (const url of cluster.urls) expect(url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(nc.info?.cluster).toBe('natscluster-test');
    expect(new Set(nc.info?.connect_urls)).toEqual(new Set(cluster.nodes.map((n) => `127.0.0.1:${n.port}`)));
    expect(jetStreamReplicas(nc)).toBe(3);
  });

  it('places a stream of three replicas at once, one on each server', async () => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], num_replicas: 3 });
    const holders = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)];
    expect(new Set(holders)).toEqual(new Set(cluster.nodes.map((n) => n.name)));
  });

  it('keeps the stream writable with one server killed, and the restarted server catches up on what it missed', async () => {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await js.publish(`${stream}.before`, 'before');
    const leader = (await jsm.streams.info(stream)).cluster?.leader;
    const victim = cluster.nodes.find((n) => n.name === leader);
    const pid = victim?.pid as number;
    await victim?.kill();
    expect(alive(pid)).toBe(false);
    expect(victim?.pid).toBeUndefined();
    // The survivors elect a new stream leader; the publish is retried until one acknowledges it.
    let ack: { seq: number } | undefined;
    while (!ack) ack = await js.publish(`${stream}.during`, 'during', { timeout: 2_000 }).catch(() => undefined);
    expect(ack.seq).toBe(2);
    await victim?.restart();
    expect(victim?.pid).toBeGreaterThan(0);
    const info = await jsm.streams.info(stream);
    expect(info.state.messages).toBe(2);
    const holders = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)];
    expect(holders).toContain(victim?.name);
    expect(info.cluster?.replicas?.map((r) => r.current)).toEqual([true, true]);
  });

  it('stops every server it started', async () => {
    const other = await startNatsCluster({ name: 'natscluster-stop', nodes: 3 });
    const pids = other.nodes.map((n) => n.pid as number);
    expect(pids.every(alive)).toBe(true);
    await other.stop();
    expect(pids.some(alive)).toBe(false);
  });
});
