import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../observability/logger.ts';
import {
  checkJetStreamReplicas, InvalidJetStreamReplicasError, jetStreamReplicas, replicasForServer, useJetStreamReplicas,
} from '../../transport/jetStreamReplicas.ts';
import { connectToNats } from '../../transport/natsConnection.ts';

describe('replicasForServer', () => {
  it('picks one copy on a server that is not in a cluster, or when nothing is known', () => {
    expect(replicasForServer({})).toBe(1);
    expect(replicasForServer(undefined)).toBe(1);
    // Without a cluster name the URLs are only the server's own addresses.
    expect(replicasForServer({ connect_urls: ['10.0.0.1:4222', '10.0.0.2:4222'] })).toBe(1);
  });

  it('picks as many copies as the cluster advertises servers, counting each address once', () => {
    expect(replicasForServer({ cluster: 'east', connect_urls: ['10.0.0.1:4222', '10.0.0.2:4222'] })).toBe(2);
    expect(replicasForServer({ cluster: 'east', connect_urls: ['10.0.0.1:4222', '10.0.0.1:4222'] })).toBe(1);
  });

  it('never picks more than three copies, however large the cluster', () => {
    expect(replicasForServer({ cluster: 'east', connect_urls: ['a:4222', 'b:4222', 'c:4222'] })).toBe(3);
    expect(replicasForServer({ cluster: 'east', connect_urls: ['a:4222', 'b:4222', 'c:4222', 'd:4222', 'e:4222'] })).toBe(3);
  });

  it('picks one copy for a cluster that advertises no servers, whose size it cannot know', () => {
    expect(replicasForServer({ cluster: 'east' })).toBe(1);
    expect(replicasForServer({ cluster: 'east', connect_urls: [] })).toBe(1);
  });
});

describe('checkJetStreamReplicas', () => {
  it('takes a whole number from 1 to 5', () => {
    for (const replicas of [1, 2, 3, 4, 5]) expect(checkJetStreamReplicas(replicas)).toBe(replicas);
  });

  it('refuses anything else with an error saying what JetStream keeps', () => {
    for (const replicas of [0, 6, 2.5, -1, Number.NaN]) {
      expect(() => checkJetStreamReplicas(replicas)).toThrow(InvalidJetStreamReplicasError);
    }
    expect(() => checkJetStreamReplicas(6)).toThrow('JetStream replicas must be a whole number from 1 to 5 (JetStream keeps at most 5 copies of a stream), not 6');
  });
});

describe('jetStreamReplicas', () => {
  const fakeConnection = (info: NatsConnection['info']): NatsConnection => ({ info }) as unknown as NatsConnection;

  it('follows what the connected server says', () => {
    expect(jetStreamReplicas(fakeConnection({ cluster: 'east', connect_urls: ['a:4222', 'b:4222', 'c:4222'] } as NatsConnection['info']))).toBe(3);
    expect(jetStreamReplicas(fakeConnection(undefined))).toBe(1);
  });

  it('takes the count chosen for the connection over the server, for that connection only', () => {
    const chosen = fakeConnection({ cluster: 'east', connect_urls: ['a:4222', 'b:4222', 'c:4222'] } as NatsConnection['info']);
    const other = fakeConnection({ cluster: 'east', connect_urls: ['a:4222', 'b:4222', 'c:4222'] } as NatsConnection['info']);
    useJetStreamReplicas(chosen, 5);
    expect(jetStreamReplicas(chosen)).toBe(5);
    expect(jetStreamReplicas(other)).toBe(3);
  });

  it('refuses to choose a count JetStream cannot keep', () => {
    expect(() => useJetStreamReplicas(fakeConnection(undefined), 7)).toThrow(InvalidJetStreamReplicasError);
  });

  it('picks one copy on the test run\'s single nats-server, and the count connectToNats is given', async () => {
    const url = inject('natsUrl');
    const plain = await connect({ servers: url });
    const chosen = await connectToNats({ url, name: 'test', logger: createLogger({ name: 'test', level: 'silent' }), jetStreamReplicas: 2 });
    try {
      expect(jetStreamReplicas(plain)).toBe(1);
      expect(jetStreamReplicas(chosen)).toBe(2);
    } finally {
      await plain.close();
      await chosen.close();
    }
  });
});
