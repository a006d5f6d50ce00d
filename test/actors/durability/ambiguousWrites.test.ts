import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointConflictError, CheckpointStore, checkpointSchemaVersion, type Checkpoint } from '../../../actors/durability/checkpointStore.ts';
import { SessionLeases } from '../../../actors/durability/sessionLeases.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

/**
 * A write whose answer never came though JetStream stored it (a timeout while a leader is elected)
 * leaves its writer holding the revision before it. Its next compare-and-set loses to its own write:
 * in a chaos run with a NATS server killed, hosts took that for another owner's and stopped sessions
 * nobody else would resume (a first checkpoint could not be written at all).
 */
describe('writes whose answer was lost', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  const names = testWireNames();
  let checkpoints: CheckpointStore;
  let leases: SessionLeases;
  let leaseBucket: KV;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    checkpoints = await CheckpointStore.open(nc, names);
    leases = await SessionLeases.open(nc, names, { ttlMs: 60_000 });
    leaseBucket = await new Kvm(nc).open(names.buckets.leases);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const checkpoint = (sessionId: string, owner: string, turn: number): Checkpoint => ({
    schemaVersion: checkpointSchemaVersion, sessionId, agent: 'assistant', task: 'Add two numbers.', status: 'running',
    snapshot: { status: 'active', value: 'calling_model', context: { sessionId, turn }, children: {} },
    nextEventSeq: turn, traceContext: {}, wallClockDeadline: Date.now() + 60_000, inFlightToolCalls: [], owner, updatedAt: new Date().toISOString(), appliedControls: [],
  });
  const turnOf = async (sessionId: string) => ((await checkpoints.read(sessionId))?.checkpoint.snapshot.context as { turn: number }).turn;

  it('writes a checkpoint over its own unanswered one, and still refuses to write over another owner\'s', async () => {
    const first = await checkpoints.create(checkpoint('s-own', 'host-a', 1));
    // Stored, but host-a never heard: it still holds `first`.
    await checkpoints.update(checkpoint('s-own', 'host-a', 2), first);
    await checkpoints.update(checkpoint('s-own', 'host-a', 3), first);
    expect(await turnOf('s-own')).toBe(3);

    const latest = (await checkpoints.read('s-own'))!.revision;
    await checkpoints.update(checkpoint('s-own', 'host-b', 4), latest);
    await expect(checkpoints.update(checkpoint('s-own', 'host-a', 5), latest)).rejects.toBeInstanceOf(CheckpointConflictError);
    expect(await turnOf('s-own')).toBe(4);
  });

  it('creates a first checkpoint again over its own unanswered one, and refuses an id another owner has', async () => {
    await checkpoints.create(checkpoint('s-first', 'host-a', 1));
    await checkpoints.create(checkpoint('s-first', 'host-a', 2));
    expect(await turnOf('s-first')).toBe(2);
    await expect(checkpoints.create(checkpoint('s-first', 'host-b', 1))).rejects.toBeInstanceOf(CheckpointConflictError);
  });

  it('renews a lease over its own unanswered renewal, and gives it up when another owner holds it', async () => {
    const lease = (await leases.acquire('s-lease', 'host-a'))!;
    const held = (await leaseBucket.get('s-lease'))!.revision;
    // host-a's renewal, stored unanswered: the lease still holds `held`.
    await leaseBucket.update('s-lease', JSON.stringify({ owner: 'host-a', expiresAt: Date.now() + 60_000 }), held);
    expect(await lease.renew()).toBe(true);
    expect(await lease.renew()).toBe(true);

    const current = (await leaseBucket.get('s-lease'))!.revision;
    await leaseBucket.update('s-lease', JSON.stringify({ owner: 'host-b', expiresAt: Date.now() + 60_000 }), current);
    expect(await lease.renew()).toBe(false);
    expect(JSON.parse((await leaseBucket.get('s-lease'))!.string())).toMatchObject({ owner: 'host-b' });
  });

  // Regression (chaos run, seed 12): a resumer's unconditional delete of a lease it had found unstored
  // could wipe the lease an orchestrator took for the same start sent again, which then lost the session.
  it('drops a lease only while it is still the one taken, leaving a marker the next taker sees', async () => {
    const unstored = (await leases.acquire('s-drop', 'resumer'))!;
    await unstored.drop();
    const retaken = (await leases.acquire('s-drop', 'host-a'))!;
    expect(retaken.replaced).toBe(true);
    // A second drop by the resumer, late: the start taken again keeps its lease.
    await unstored.drop();
    expect(JSON.parse((await leaseBucket.get('s-drop'))!.string())).toMatchObject({ owner: 'host-a' });
    expect(await retaken.renew()).toBe(true);
  });
});
